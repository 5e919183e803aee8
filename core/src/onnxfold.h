#pragma once
// Folding of small integer subgraphs of an ONNX graph (onnxfold.cpp).

#include <onnx/onnx_pb.h>

namespace partita::detail {

// Replaces nodes that compute small integer tensors from constants by
// initializers holding their values. Returns how many nodes it folded.
int foldIntegerConstants(onnx::GraphProto& g);

} // namespace partita::detail
