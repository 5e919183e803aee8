#include "partita/executor/backend.h"

#include <algorithm>
#include <vector>

namespace partita {

std::string_view commGroupName(CommGroup g)
{
    switch (g) {
    case CommGroup::Tensor: return "tensor-parallel";
    case CommGroup::Expert: return "expert-parallel";
    case CommGroup::Data: return "data-parallel";
    case CommGroup::World: return "world";
    case CommGroup::Context: return "context-parallel";
    }
    return "?";
}

namespace {

class LoneCommunicator final : public Communicator
{
public:
    std::string name() const override { return "none (one rank)"; }
    int rank() const override { return 0; }
    int size() const override { return 1; }
    int groupSize(CommGroup) const override { return 1; }
    int groupRank(CommGroup) const override { return 0; }
    int hosts() const override { return 1; }
    Result<bool> collective(CommGroup, Collective, double, int, int) override { return true; }
    Result<bool> send(int peer, double, int) override
    {
        return Error{"plan", "send", "rank 0 is alone: there is no rank " + std::to_string(peer) + " to send to"};
    }
    Result<bool> recv(int peer, double, int) override
    {
        return Error{"plan", "recv", "rank 0 is alone: there is no rank " + std::to_string(peer) + " to receive from"};
    }
    Result<bool> completeSends() override { return true; }
    Result<bool> barrier() override { return true; }
    Result<bool> broadcastBytes(void*, size_t, int) override { return true; }
    int64_t clockOffsetNs() const override { return 0; }
    bool concurrent() const override { return true; }
    void abort(int) override {}
};

} // namespace

std::unique_ptr<Communicator> makeLoneCommunicator() { return std::make_unique<LoneCommunicator>(); }

} // namespace partita
