#include "pacer/sender.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <utility>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/resource.h>
#ifdef __linux__
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>
#endif
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#endif

namespace rtcroom::pacer {
namespace {

// sendmmsg takes at most UIO_MAXIOV (1024) messages; a wake-up rarely has more than a few due.
constexpr std::size_t kMaxBatch = 256;

std::chrono::steady_clock::time_point ToTimePoint(std::int64_t us) {
    return std::chrono::steady_clock::time_point(std::chrono::microseconds(us));
}

#ifdef _WIN32

// Winsock has no dup() for sockets: the Python layer keeps the socket object alive instead.
std::intptr_t AdoptSocket(std::intptr_t fd) {
    sockaddr_storage peer{};
    int len = sizeof peer;
    if (getpeername(static_cast<SOCKET>(fd), reinterpret_cast<sockaddr *>(&peer), &len) != 0) {
        int err = WSAGetLastError();
        if (err == WSAENOTCONN) throw std::invalid_argument("the socket must be connected");
        throw std::invalid_argument("socket descriptor " + std::to_string(fd) +
                                    " is closed or not a socket");
    }
    int type = 0;
    len = sizeof type;
    getsockopt(static_cast<SOCKET>(fd), SOL_SOCKET, SO_TYPE, reinterpret_cast<char *>(&type), &len);
    if (type != SOCK_DGRAM) throw std::invalid_argument("the socket must be a datagram socket");
    return fd;
}

bool IsUdp(std::intptr_t) { return false; }

void ReleaseSocket(std::intptr_t) {}

#else

std::intptr_t AdoptSocket(std::intptr_t fd) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    if (getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr *>(&peer), &len) != 0) {
        if (errno == ENOTCONN) throw std::invalid_argument("the socket must be connected");
        throw std::invalid_argument("socket descriptor " + std::to_string(fd) +
                                    " is closed or not a socket: " + std::strerror(errno));
    }
    int type = 0;
    len = sizeof type;
    getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_TYPE, &type, &len);
    if (type != SOCK_DGRAM) throw std::invalid_argument("the socket must be a datagram socket");
    int copy = fcntl(static_cast<int>(fd), F_DUPFD_CLOEXEC, 0);
    if (copy < 0) {
        throw std::runtime_error(std::string("cannot duplicate the socket: ") +
                                 std::strerror(errno));
    }
    return copy;
}

void ReleaseSocket(std::intptr_t fd) { close(static_cast<int>(fd)); }

// Segmentation offload only for UDP: other datagram sockets (AF_UNIX) ignore the option and
// would deliver a run as one datagram.
bool IsUdp(std::intptr_t fd) {
#ifdef SO_PROTOCOL
    int protocol = 0;
    socklen_t len = sizeof protocol;
    return getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 &&
           protocol == IPPROTO_UDP;
#else
    (void)fd;
    return false;
#endif
}

#endif

// The thread runs for microseconds at a time but must run soon after its timer fires. Linux 6.12+
// lets an unprivileged normal thread ask for a short scheduler slice (sched_attr.sched_runtime),
// which gives it an earlier deadline, so it preempts a busy thread's long slice instead of waiting
// for it to end. Older kernels refuse it (EINVAL) and the thread keeps the default: nothing lost.
void AskForShortSlices() {
#if defined(__linux__) && defined(SYS_sched_setattr)
    struct {
        std::uint32_t size, policy;
        std::uint64_t flags;
        std::int32_t nice;
        std::uint32_t priority;
        std::uint64_t runtime, deadline, period;
    } attr{};
    attr.size = sizeof attr;
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);  // this thread's: keep it (raising it needs rights)
    if (errno != 0) return;
    attr.nice = nice;
    attr.runtime = 100'000;  // ns: the shortest slice the kernel accepts
    syscall(SYS_sched_setattr, 0, &attr, 0);
#endif
}

}  // namespace

std::int64_t MonotonicMicros() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

SocketSender::SocketSender(std::intptr_t fd, std::int64_t target_bitrate_bps, Config config,
                           std::int64_t tolerance_us, bool record)
    : fd_(-1),
      tolerance_us_(tolerance_us),
      record_(record),
      pacer_(target_bitrate_bps, MonotonicMicros(), config) {
    if (tolerance_us < 0 || tolerance_us > 10'000) {
        throw std::invalid_argument("tolerance must be 0 to 10 ms, got " +
                                    std::to_string(tolerance_us) + " us");
    }
    fd_ = AdoptSocket(fd);
    gso_ = IsUdp(fd_);
}

SocketSender::~SocketSender() {
    Stop();
    ReleaseSocket(fd_);
}

void SocketSender::Start() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (thread_.joinable()) throw std::logic_error("the sender is already started");
    if (stopping_) throw std::logic_error("the sender was stopped; make a new one");
    thread_ = std::thread([this] { Run(); });
}

void SocketSender::Stop() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
}

void SocketSender::NotifyIfSooner() {
    std::int64_t next = pacer_.NextSendTime();
    if (next != kNever && next + tolerance_us_ / 2 < wake_at_) wake_.notify_one();
}

void SocketSender::SetTargetBitrate(std::int64_t target_bitrate_bps) {
    std::lock_guard<std::mutex> lock(mutex_);
    pacer_.SetTargetBitrate(target_bitrate_bps, MonotonicMicros());
    NotifyIfSooner();
}

std::size_t SocketSender::EnqueueMany(std::vector<std::string> packets, PacketClass packet_class) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::int64_t now = MonotonicMicros();
    std::size_t dropped = 0;
    for (auto &packet : packets) dropped += pacer_.Enqueue(std::move(packet), packet_class, now);
    NotifyIfSooner();
    return dropped;
}

void SocketSender::Run() {
    AskForShortSlices();
    std::vector<Released> batch;
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
        std::int64_t next = pacer_.NextSendTime();
        std::int64_t now = MonotonicMicros();
        if (next > now) {
            // Re-read everything on any wake-up: a packet, a rate change or Stop() may have
            // come in, and condition variables wake spuriously.
            if (next == kNever) {
                wake_at_ = kNever;
                wake_.wait(lock);
            } else {
                wake_at_ = next + tolerance_us_ / 2;
                if (wake_at_ > now) wake_.wait_until(lock, ToTimePoint(wake_at_));
                next = pacer_.NextSendTime();
                now = MonotonicMicros();
            }
            if (stopping_ || next == kNever || next > now + tolerance_us_) continue;
        }
        wake_at_ = now;  // awake: enqueuers need not notify
        ++wakeups_;
        batch.clear();
        while (batch.size() < kMaxBatch) {
            auto packet = pacer_.Pop(now + tolerance_us_);
            if (!packet) break;
            batch.push_back(std::move(*packet));
        }
        lock.unlock();
        std::int64_t sent_us = MonotonicMicros();
        std::uint64_t refused = SendBatch(batch);
        lock.lock();
        sent_ += batch.size() - refused;
        errors_ += refused;
        if (record_) {
            for (const auto &p : batch) {
                log_.push_back(Release{p.due_us, sent_us, p.packet_class, p.data.size()});
            }
        }
    }
    wake_at_ = kNever;
}

#if defined(__linux__)
namespace {

// A run of packets the kernel takes as one datagram cut into segments (UDP GSO, Linux 4.18+):
// every packet but the last of the run has the segment size, the last at most that.
constexpr std::size_t kMaxSegments = 64;      // UDP_MAX_SEGMENTS on every kernel that has GSO
constexpr std::size_t kMaxGsoBytes = 65'000;  // within one IP datagram, headers included

std::size_t RunLength(const std::vector<Released> &batch, std::size_t first) {
    std::size_t size = batch[first].data.size(), bytes = 0, n = 0;
    while (first + n < batch.size() && n < kMaxSegments) {
        std::size_t next = batch[first + n].data.size();
        if (next > size || bytes + next > kMaxGsoBytes) break;
        bytes += next;
        ++n;
        if (next < size) break;  // a shorter packet ends the run
    }
    return std::max<std::size_t>(n, 1);  // a packet too big to share a datagram goes alone
}

}  // namespace
#endif

namespace {

std::uint64_t SendDatagrams(std::intptr_t fd, const std::vector<Released> &batch, bool &gso) {
    std::uint64_t refused = 0;
#if defined(__linux__)
    // Sending costs the kernel per datagram it walks through the stack, so runs of equal-sized
    // packets (a frame's packets) go as one segmented datagram each; the wire sees the same
    // packets, back to back, as sendmmsg would send them.
    constexpr std::size_t kControl = CMSG_SPACE(sizeof(std::uint16_t));
    std::vector<iovec> iov(batch.size());
    std::vector<mmsghdr> msgs;
    std::vector<std::size_t> runs;  // packets in each message
    std::vector<char> control(batch.size() * kControl);
    msgs.reserve(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
        iov[i].iov_base = const_cast<char *>(batch[i].data.data());
        iov[i].iov_len = batch[i].data.size();
    }
    for (std::size_t i = 0; i < batch.size();) {
        std::size_t n = gso ? RunLength(batch, i) : 1;
        mmsghdr msg{};
        msg.msg_hdr.msg_iov = &iov[i];
        msg.msg_hdr.msg_iovlen = n;
        if (n > 1) {
            msg.msg_hdr.msg_control = &control[msgs.size() * kControl];
            msg.msg_hdr.msg_controllen = kControl;
            cmsghdr *cm = CMSG_FIRSTHDR(&msg.msg_hdr);
            cm->cmsg_level = SOL_UDP;
            cm->cmsg_type = UDP_SEGMENT;
            cm->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
            auto segment = static_cast<std::uint16_t>(batch[i].data.size());
            std::memcpy(CMSG_DATA(cm), &segment, sizeof segment);
        }
        msgs.push_back(msg);
        runs.push_back(n);
        i += n;
    }
    std::size_t m = 0, packet = 0;
    while (m < msgs.size()) {
        int n = sendmmsg(static_cast<int>(fd), msgs.data() + m,
                         static_cast<unsigned>(msgs.size() - m), MSG_DONTWAIT);
        if (n > 0) {
            for (int k = 0; k < n; ++k) packet += runs[m + static_cast<std::size_t>(k)];
            m += static_cast<std::size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (runs[m] > 1 && (errno == EINVAL || errno == EIO || errno == ENOPROTOOPT ||
                                   errno == EOPNOTSUPP)) {
            // No GSO here (old kernel, or a segment above the route's MTU): send the rest of
            // this batch one datagram each, and the following batches too.
            gso = false;
            std::vector<Released> rest;
            for (std::size_t k = packet; k < batch.size(); ++k) rest.push_back(batch[k]);
            return refused + SendDatagrams(fd, rest, gso);
        } else {
            // The error belongs to message m: its packets are lost, the rest still go.
            refused += runs[m];
            packet += runs[m];
            ++m;
        }
    }
#elif defined(_WIN32)
    for (const auto &p : batch) {
        if (send(static_cast<SOCKET>(fd), p.data.data(), static_cast<int>(p.data.size()), 0) < 0) {
            ++refused;
        }
    }
#else
    for (const auto &p : batch) {
        ssize_t n;
        do {
            n = send(static_cast<int>(fd), p.data.data(), p.data.size(), MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        if (n < 0) ++refused;
    }
#endif
    return refused;
}

}  // namespace

std::uint64_t SocketSender::SendBatch(const std::vector<Released> &batch) {
    return SendDatagrams(fd_, batch, gso_);
}

std::int64_t SocketSender::target_bitrate_bps() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pacer_.target_bitrate_bps();
}

std::int64_t SocketSender::pacing_rate_bps() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pacer_.pacing_rate_bps();
}

std::size_t SocketSender::queued_packets() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pacer_.queued_packets();
}

std::size_t SocketSender::queued_packets(PacketClass c) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pacer_.queued_packets(c);
}

std::size_t SocketSender::queued_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pacer_.queued_bytes();
}

std::uint64_t SocketSender::dropped_packets(PacketClass c) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pacer_.dropped_packets(c);
}

std::uint64_t SocketSender::sent_packets() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return sent_;
}

std::uint64_t SocketSender::wakeups() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return wakeups_;
}

std::uint64_t SocketSender::send_errors() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return errors_;
}

std::vector<Release> SocketSender::TakeLog() {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::exchange(log_, {});
}

#if defined(__linux__)
namespace {

constexpr std::size_t kMaxDatagram = 65'507;  // the largest UDP payload over IPv4

double ThreadCpuSeconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

timespec ToTimespec(std::int64_t us) {
    return timespec{static_cast<time_t>(us / 1'000'000), static_cast<long>(us % 1'000'000 * 1000)};
}

}  // namespace

WakeCost WakeCpu(std::int64_t period_us, std::int64_t count, const std::string &method,
                 std::int64_t slack_ns, std::intptr_t fd, std::size_t packets, std::size_t size) {
    if (period_us < 1 || count < 1) {
        throw std::invalid_argument("period and count must be at least 1");
    }
    if (size > kMaxDatagram) throw std::invalid_argument("size must be at most 65507 bytes");
    if (method != "condvar" && method != "nanosleep" && method != "timerfd" && method != "epoll") {
        throw std::invalid_argument("method must be condvar, nanosleep, timerfd or epoll, got " +
                                    method);
    }
    std::vector<Released> batch;
    if (fd >= 0) {
        for (std::size_t i = 0; i < packets; ++i) {
            batch.push_back(Released{std::string(size, '\0'), size, PacketClass::kVideo, 0});
        }
    }
    bool gso = fd >= 0 && IsUdp(fd);
    WakeCost cost{};
    std::string error;
    std::thread thread([&] {
        if (slack_ns > 0) prctl(PR_SET_TIMERSLACK, static_cast<unsigned long>(slack_ns));
        int tfd = -1, efd = -1;
        std::int64_t first = MonotonicMicros() + period_us;
        if (method == "timerfd" || method == "epoll") {
            tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
            itimerspec spec{ToTimespec(period_us), ToTimespec(first)};
            if (tfd < 0 || timerfd_settime(tfd, TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
                error = std::string("timerfd: ") + std::strerror(errno);
                return;
            }
            if (method == "epoll") {
                efd = epoll_create1(EPOLL_CLOEXEC);
                epoll_event ev{};
                ev.events = EPOLLIN;
                if (efd < 0 || epoll_ctl(efd, EPOLL_CTL_ADD, tfd, &ev) != 0) {
                    error = std::string("epoll: ") + std::strerror(errno);
                    close(tfd);
                    return;
                }
            }
        }
        std::mutex mutex;
        std::condition_variable never;
        std::unique_lock<std::mutex> lock(mutex);
        double late_us = 0;
        double start = ThreadCpuSeconds();
        for (std::int64_t i = 0; i < count; ++i) {
            std::int64_t deadline = first + i * period_us;
            if (method == "condvar") {
                while (MonotonicMicros() < deadline) never.wait_until(lock, ToTimePoint(deadline));
            } else if (method == "nanosleep") {
                timespec at = ToTimespec(deadline);
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr) == EINTR) {
                }
            } else {
                if (method == "epoll") {
                    epoll_event ev{};
                    while (epoll_wait(efd, &ev, 1, -1) < 0 && errno == EINTR) {
                    }
                }
                std::uint64_t expirations = 0;
                while (read(tfd, &expirations, sizeof expirations) < 0 && errno == EINTR) {
                }
                i += static_cast<std::int64_t>(expirations) - 1;  // overruns count as woken
            }
            late_us += static_cast<double>(MonotonicMicros() - deadline);
            if (!batch.empty()) SendDatagrams(fd, batch, gso);
        }
        cost.cpu_s = ThreadCpuSeconds() - start;
        cost.mean_late_us = late_us / static_cast<double>(count);
        if (efd >= 0) close(efd);
        if (tfd >= 0) close(tfd);
    });
    thread.join();
    if (!error.empty()) throw std::runtime_error(error);
    return cost;
}

double SendCpu(std::intptr_t fd, std::size_t size, std::size_t count, std::size_t batch) {
    if (batch < 1) throw std::invalid_argument("batch must be at least 1 packet");
    if (size > kMaxDatagram) throw std::invalid_argument("size must be at most 65507 bytes");
    std::vector<Released> packets;
    for (std::size_t i = 0; i < std::min(batch, count); ++i) {
        packets.push_back(Released{std::string(size, '\0'), size, PacketClass::kVideo, 0});
    }
    bool gso = IsUdp(fd);
    double start = ThreadCpuSeconds();
    for (std::size_t sent = 0; sent < count; sent += packets.size()) {
        if (count - sent < packets.size()) packets.resize(count - sent);
        SendDatagrams(fd, packets, gso);
    }
    return ThreadCpuSeconds() - start;
}
#else
WakeCost WakeCpu(std::int64_t, std::int64_t, const std::string &, std::int64_t, std::intptr_t,
                 std::size_t, std::size_t) {
    throw std::runtime_error("the wake-up floor is measured on Linux only");
}

double SendCpu(std::intptr_t, std::size_t, std::size_t, std::size_t) {
    throw std::runtime_error("the send floor is measured on Linux only");
}
#endif

}  // namespace rtcroom::pacer
