#include "rpc/agent_hub.h"

#include <gtest/gtest.h>

#include <set>

#include <asio.hpp>

#include "support/temp_dir.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::rpc {
namespace {

using p2p::net::test::make_identity;
using p2p::net::test::run_coroutine;
using p2p::net::test::run_until;

std::string text_of(const Bytes& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

Bytes bytes_of(std::string_view text) {
  return Bytes(text.begin(), text.end());
}

// A serving agent that records what it is given; `accepting` false plays an agent whose
// stream has ended.
class RecordingServer final : public RequestServer {
 public:
  bool push(IncomingRequestData request) override {
    if (!accepting) return false;
    received.push_back(std::move(request));
    return true;
  }
  bool accepting = true;
  std::vector<IncomingRequestData> received;
};

class AgentHubTest : public ::testing::Test {
 protected:
  void open(store::InboxLimits limits = {}) {
    auto inbox = store::Inbox::open(dir_.path() / "inbox.db", limits);
    ASSERT_TRUE(inbox) << inbox.error().message;
    inbox_ = std::move(*inbox);
    hub_ = std::make_unique<AgentHub>(io_, *inbox_,
                                      [this](const std::string& line) { log_.push_back(line); });
  }

  Expected<void> deliver(std::string_view text) {
    auto result =
        run_coroutine(io_, [&]() { return hub_->deliver_message(peer_, bytes_of(text)); });
    EXPECT_TRUE(result.has_value());
    return result.value_or(fail("did not finish"));
  }

  // Starts a request from the peer; its answer lands in `answer`.
  void start_request(std::optional<p2p::daan::RequestAnswer>& answer, std::string_view text) {
    asio::co_spawn(
        io_,
        [this, &answer, payload = bytes_of(text)]() -> asio::awaitable<void> {
          answer = co_await hub_->handle_request(peer_, payload);
        },
        asio::detached);
  }

  test::TempDir dir_;
  asio::io_context io_;
  p2p::PeerId peer_ = make_identity().peer_id;
  std::unique_ptr<store::Inbox> inbox_;
  std::unique_ptr<AgentHub> hub_;
  std::vector<std::string> log_;
};

TEST_F(AgentHubTest, MessagesAreStoredThenListenersAreTold) {
  open();
  int notified = 0;
  hub_->add_inbox_listener([&] {
    ++notified;
    return true;
  });
  ASSERT_TRUE(deliver("hello"));
  ASSERT_TRUE(deliver("again"));
  EXPECT_EQ(notified, 2);
  auto listed = inbox_->list(0, 10);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ(text_of((*listed)[0].payload), "hello");
  EXPECT_EQ((*listed)[0].from, peer_.to_string());
  EXPECT_EQ((*listed)[0].protocol, "/daan/message/1.0.0");
  EXPECT_EQ(hub_->stats().messages_stored, 2u);
}

TEST_F(AgentHubTest, AListenerThatEndedIsDropped) {
  open();
  int calls = 0;
  hub_->add_inbox_listener([&] {
    ++calls;
    return false;
  });
  ASSERT_TRUE(deliver("one"));
  ASSERT_TRUE(deliver("two"));
  EXPECT_EQ(calls, 1);
}

TEST_F(AgentHubTest, AFullInboxRefusesAndKeepsWhatItHas) {
  open(store::InboxLimits{2, 1024 * 1024});
  ASSERT_TRUE(deliver("one"));
  ASSERT_TRUE(deliver("two"));
  auto refused = deliver("three");
  ASSERT_FALSE(refused);
  EXPECT_EQ(hub_->stats().messages_refused, 1u);
  EXPECT_EQ(inbox_->counts().messages, 2u);
  EXPECT_EQ(inbox_->counts().refused, 1u);
  ASSERT_EQ(log_.size(), 1u);
  EXPECT_NE(log_[0].find("refused"), std::string::npos) << log_[0];
  // A flood of refusals makes no more log lines within the report interval.
  ASSERT_FALSE(deliver("four"));
  EXPECT_EQ(log_.size(), 1u);
}

TEST_F(AgentHubTest, ARequestWithNobodyServingIsAnsweredNoHandler) {
  open();
  auto answer = run_coroutine(io_, [&]() { return hub_->handle_request(peer_, bytes_of("hi")); });
  ASSERT_TRUE(answer);
  EXPECT_TRUE(answer->error);
  EXPECT_EQ(text_of(answer->payload), "no handler registered");
}

TEST_F(AgentHubTest, ARequestGoesToOneAgentAndItsAnswerComesBack) {
  open();
  auto first = std::make_shared<RecordingServer>();
  auto second = std::make_shared<RecordingServer>();
  auto first_id = hub_->add_server(first);
  auto second_id = hub_->add_server(second);
  ASSERT_TRUE(first_id && second_id);

  std::optional<p2p::daan::RequestAnswer> answers[2];
  for (auto& answer : answers)
    start_request(answer, "question");
  ASSERT_TRUE(
      run_until(io_, [&] { return first->received.size() + second->received.size() == 2; }));
  // The agent with the fewest unanswered requests gets the next one: one each.
  ASSERT_EQ(first->received.size(), 1u);
  ASSERT_EQ(second->received.size(), 1u);
  EXPECT_EQ(text_of(first->received[0].payload), "question");
  EXPECT_EQ(first->received[0].from, peer_);

  // An answer from the wrong agent is ignored.
  hub_->answer(*second_id, first->received[0].request_id, {false, bytes_of("forged")});
  hub_->answer(*first_id, first->received[0].request_id, {false, bytes_of("from first")});
  hub_->answer(*second_id, second->received[0].request_id, {true, bytes_of("cannot")});
  ASSERT_TRUE(run_until(io_, [&] { return answers[0] && answers[1]; }));
  std::set<std::string> texts{text_of(answers[0]->payload), text_of(answers[1]->payload)};
  EXPECT_EQ(texts, (std::set<std::string>{"from first", "cannot"}));
  EXPECT_NE(answers[0]->error, answers[1]->error);
}

TEST_F(AgentHubTest, UnansweredRequestsOfAnAgentThatLeavesAreAnsweredWithAnError) {
  open();
  auto server = std::make_shared<RecordingServer>();
  auto id = hub_->add_server(server);
  ASSERT_TRUE(id);
  std::optional<p2p::daan::RequestAnswer> answer;
  start_request(answer, "q");
  ASSERT_TRUE(run_until(io_, [&] { return server->received.size() == 1; }));
  hub_->remove_server(*id);
  ASSERT_TRUE(run_until(io_, [&] { return answer.has_value(); }));
  EXPECT_TRUE(answer->error);
  EXPECT_NE(text_of(answer->payload).find("went away"), std::string::npos);
}

TEST_F(AgentHubTest, AnAgentWhoseStreamEndedIsSkipped) {
  open();
  auto gone = std::make_shared<RecordingServer>();
  gone->accepting = false;
  ASSERT_TRUE(hub_->add_server(gone));
  auto answer = run_coroutine(io_, [&]() { return hub_->handle_request(peer_, bytes_of("q")); });
  ASSERT_TRUE(answer);
  // The only agent turned out to be gone: nobody serves.
  EXPECT_TRUE(answer->error);
  EXPECT_EQ(text_of(answer->payload), "no handler registered");
}

TEST_F(AgentHubTest, StopAnswersPendingRequestsAndRefusesNewWork) {
  open();
  auto server = std::make_shared<RecordingServer>();
  ASSERT_TRUE(hub_->add_server(server));
  std::optional<p2p::daan::RequestAnswer> answer;
  start_request(answer, "q");
  ASSERT_TRUE(run_until(io_, [&] { return server->received.size() == 1; }));
  hub_->stop();
  ASSERT_TRUE(run_until(io_, [&] { return answer.has_value(); }));
  EXPECT_TRUE(answer->error);
  EXPECT_FALSE(deliver("late"));
  EXPECT_FALSE(hub_->add_server(std::make_shared<RecordingServer>()));
}

}  // namespace
}  // namespace an::rpc
