#pragma once
// A run of the executor's (a strategy run, runsession.h; a user's profiled
// command, profilesession.h) on a thread of its own, for a caller that must
// not wait on it: the workbench. The job gets the session's cancel flag; its
// events and `done` are called on the session's thread.

#include "partita/core/result.h"

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace partita {

template <class Outcome>
class Session
{
public:
    using Job = std::function<Result<Outcome>(const std::atomic<bool>* cancel)>;

    explicit Session(Job job, std::function<void()> done = {}) : m_job(std::move(job)), m_done(std::move(done)) {}
    ~Session() // cancels a run still going and waits for it
    {
        cancel();
        wait();
    }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    void start()
    {
        wait(); // one run at a time
        m_cancel = false;
        m_running = true;
        {
            std::lock_guard lock(m_mutex);
            m_result.reset();
        }
        m_thread = std::thread([this] {
            Result<Outcome> r = m_job(&m_cancel);
            {
                std::lock_guard lock(m_mutex);
                m_result = std::move(r);
            }
            m_running = false;
            if (m_done)
                m_done();
        });
    }
    void cancel() { m_cancel = true; }
    bool running() const { return m_running; }
    void wait()
    {
        if (m_thread.joinable())
            m_thread.join();
    }
    // After `done`: the outcome, or why nothing ran.
    Result<Outcome> result() const
    {
        std::lock_guard lock(m_mutex);
        if (!m_result)
            return Error{{}, {}, "the run has not ended"};
        return *m_result;
    }

private:
    Job m_job;
    std::function<void()> m_done;
    std::atomic<bool> m_cancel{false}, m_running{false};
    std::thread m_thread;
    mutable std::mutex m_mutex;
    std::optional<Result<Outcome>> m_result;
};

} // namespace partita
