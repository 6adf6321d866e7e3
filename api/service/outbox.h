// Email delivery. The development sink (the default) writes each message as one JSON file under
// `<data_dir>/outbox/` and logs that it did — never the passcode itself. Real SMTP comes with a later
// sender behind the same interface.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "engine/base/clock.h"
#include "engine/base/result.h"

namespace sigil::service {

struct EmailMessage {
  std::string to;
  std::string subject;
  std::string text;
  std::string otp;  // the passcode, when the message carries one (outbox readers use it in tests)
};

class EmailSender {
 public:
  virtual ~EmailSender() = default;
  [[nodiscard]] virtual Result<void> send(const EmailMessage& m) = 0;
};

class OutboxSender final : public EmailSender {
 public:
  // Creates the folder (0700) if needed.
  [[nodiscard]] static Result<std::unique_ptr<OutboxSender>> open(std::string dir, const Clock& clock);
  [[nodiscard]] Result<void> send(const EmailMessage& m) override;

 private:
  OutboxSender(std::string dir, const Clock& clock) : dir_(std::move(dir)), clock_(clock) {}
  std::string dir_;
  const Clock& clock_;
};

}  // namespace sigil::service
