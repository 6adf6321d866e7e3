#include "api/service/outbox.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <memory>

#include "engine/base/json_writer.h"
#include "engine/crypto/digest.h"

namespace sigil::service {

Result<std::unique_ptr<OutboxSender>> OutboxSender::open(std::string dir, const Clock& clock) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return make_error(ErrorCode::kUnavailable, fmt::format("cannot create {}: {}", dir, std::strerror(errno)));
  }
  return std::unique_ptr<OutboxSender>(new OutboxSender(std::move(dir), clock));
}

Result<void> OutboxSender::send(const EmailMessage& m) {
  const int64_t now = clock_.now_ms();
  JsonWriter w;
  w.begin_object();
  w.key("to").string(m.to);
  w.key("subject").string(m.subject);
  w.key("text").string(m.text);
  if (!m.otp.empty()) w.key("otp").string(m.otp);
  w.key("created_at").number(now / 1000);
  w.end_object();
  const std::string body = std::move(w).str() + "\n";
  const std::string name = fmt::format("{}-{}.json", now, crypto::random_token(6));
  const std::string tmp = dir_ + "/." + name + ".tmp";
  const std::string path = dir_ + "/" + name;
  // Write-then-rename, so a reader never sees half a message.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(ErrorCode::kUnavailable, "Email delivery failed");
  const bool ok = ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return make_error(ErrorCode::kUnavailable, "Email delivery failed");
  }
  fmt::print(stderr, "outbox: message '{}' to {} written to {}\n", m.subject, m.to, path);
  return {};
}

}  // namespace sigil::service
