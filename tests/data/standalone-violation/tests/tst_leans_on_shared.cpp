// A test that reads third-party material outside a unit's third-party part:
// cmake/StandaloneCheck.cmake must refuse this tree (CTest: standalone_check_catches_shared).
const char* kTrace = "../shared/data/traces/trace_compare-base-base.json.gz";
