#include "dscp/dscp.h"

#include <cerrno>
#include <cstring>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
using socklen_t = int;
using sock_handle = SOCKET;
static int last_error() { return WSAGetLastError(); }
static bool is_bad_socket(int err) { return err == WSAENOTSOCK || err == WSAEBADF; }
static bool is_refusal(int err) { return err == WSAENOPROTOOPT || err == WSAEINVAL || err == WSAEACCES; }
#else
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <sys/socket.h>

#include <cstdlib>
using sock_handle = int;
static int last_error() { return errno; }
static bool is_bad_socket(int err) { return err == EBADF || err == ENOTSOCK; }
static bool is_refusal(int err) {
    return err == ENOPROTOOPT || err == EINVAL || err == EPERM || err == EACCES || err == EOPNOTSUPP;
}
#endif

namespace rtcroom::dscp {
namespace {

sock_handle handle(std::intptr_t fd) { return static_cast<sock_handle>(fd); }

[[noreturn]] void fail(std::intptr_t fd, const char *what, int err) {
    if (is_bad_socket(err)) {
        throw BadSocket("socket descriptor " + std::to_string(fd) + " is closed or not a socket");
    }
    throw SocketError(err, std::string(what) + " failed on socket descriptor " +
                               std::to_string(fd) + ": " + std::strerror(err));
}

struct Option {
    int level;
    int name;
};

Option option_for(std::intptr_t fd) {
    int family = socket_family(fd);
    if (family == AF_INET) return {IPPROTO_IP, IP_TOS};
    if (family == AF_INET6) return {IPPROTO_IPV6, IPV6_TCLASS};
    throw std::invalid_argument("socket descriptor " + std::to_string(fd) + " has address family " +
                                std::to_string(family) +
                                "; a traffic class applies to IPv4 and IPv6 sockets only");
}

void check_traffic_class(int traffic_class) {
    if (traffic_class < 0 || traffic_class > 255) {
        throw std::invalid_argument("traffic class must be 0..255, got " +
                                    std::to_string(traffic_class));
    }
}

}  // namespace

int socket_family(std::intptr_t fd) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (getsockname(handle(fd), reinterpret_cast<sockaddr *>(&addr), &len) != 0) {
        fail(fd, "getsockname", last_error());
    }
    return addr.ss_family;
}

bool set_traffic_class(std::intptr_t fd, int traffic_class) {
    check_traffic_class(traffic_class);
    Option opt = option_for(fd);
    int value = traffic_class;
    if (setsockopt(handle(fd), opt.level, opt.name, reinterpret_cast<const char *>(&value),
                   sizeof value) != 0) {
        int err = last_error();
        if (is_refusal(err)) return false;
        fail(fd, "setsockopt", err);
    }
    if (opt.level == IPPROTO_IPV6) {
        // A dual-stack IPv6 socket sends to IPv4-mapped peers with the IPv4 header's TOS, which
        // only IP_TOS sets. Where the OS has no such notion the call fails and nothing is lost.
        setsockopt(handle(fd), IPPROTO_IP, IP_TOS, reinterpret_cast<const char *>(&value),
                   sizeof value);
    }
    return true;
}

int get_traffic_class(std::intptr_t fd) {
    Option opt = option_for(fd);
    int value = 0;
    socklen_t len = sizeof value;
    if (getsockopt(handle(fd), opt.level, opt.name, reinterpret_cast<char *>(&value), &len) != 0) {
        fail(fd, "getsockopt", last_error());
    }
    // Some systems answer with a single byte.
    return len == 1 ? static_cast<unsigned char>(value & 0xff) : value & 0xff;
}

#ifdef _WIN32

SendResult send_marked(std::intptr_t fd, const void *, std::size_t, const std::string &, int port,
                       int traffic_class) {
    // Winsock has no per-packet traffic class (marking goes through the qWAVE QoS API).
    check_traffic_class(traffic_class);
    option_for(fd);
    (void)port;
    return SendResult::kUnsupported;
}

#else

namespace {

sockaddr_storage parse_address(int family, const std::string &host, int port, socklen_t *len) {
    if (port < 0 || port > 65535) {
        throw std::invalid_argument("port must be 0..65535, got " + std::to_string(port));
    }
    sockaddr_storage addr{};
    if (family == AF_INET) {
        auto *in = reinterpret_cast<sockaddr_in *>(&addr);
        in->sin_family = AF_INET;
        in->sin_port = htons(static_cast<uint16_t>(port));
        if (inet_pton(AF_INET, host.c_str(), &in->sin_addr) == 1) {
            *len = sizeof *in;
            return addr;
        }
    } else {
        auto *in6 = reinterpret_cast<sockaddr_in6 *>(&addr);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(static_cast<uint16_t>(port));
        *len = sizeof *in6;
        std::string::size_type pct = host.find('%');
        std::string ip = host.substr(0, pct);
        in_addr v4{};
        if (inet_pton(AF_INET6, ip.c_str(), &in6->sin6_addr) == 1) {
            if (pct != std::string::npos) {
                std::string scope = host.substr(pct + 1);
                char *end = nullptr;
                unsigned long id = std::strtoul(scope.c_str(), &end, 10);
                in6->sin6_scope_id = (!scope.empty() && *end == '\0')
                                         ? static_cast<uint32_t>(id)
                                         : if_nametoindex(scope.c_str());
                if (in6->sin6_scope_id == 0 && scope != "0") {
                    throw std::invalid_argument("unknown IPv6 scope in host " + host);
                }
            }
            return addr;
        }
        if (pct == std::string::npos && inet_pton(AF_INET, ip.c_str(), &v4) == 1) {
            unsigned char *b = in6->sin6_addr.s6_addr;
            b[10] = b[11] = 0xff;
            std::memcpy(b + 12, &v4, 4);
            return addr;
        }
    }
    throw std::invalid_argument("host must be a numeric IP address for this socket's family, got " +
                                host);
}

}  // namespace

SendResult send_marked(std::intptr_t fd, const void *data, std::size_t size, const std::string &host,
                       int port, int traffic_class) {
    check_traffic_class(traffic_class);
    Option opt = option_for(fd);
    socklen_t addr_len = 0;
    sockaddr_storage addr = parse_address(socket_family(fd), host, port, &addr_len);
    // An IPv4-mapped destination leaves through IPv4, whose header takes IP_TOS.
    bool mapped = opt.level == IPPROTO_IPV6 &&
                  IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<sockaddr_in6 *>(&addr)->sin6_addr);
    if (mapped) opt = {IPPROTO_IP, IP_TOS};

    iovec iov{const_cast<void *>(data), size};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_name = &addr;
    msg.msg_namelen = addr_len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = opt.level;
    cmsg->cmsg_type = opt.name;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    int value = traffic_class;
    std::memcpy(CMSG_DATA(cmsg), &value, sizeof value);
    if (sendmsg(handle(fd), &msg, 0) >= 0) return SendResult::kSent;
    int err = last_error();
    if (err == EAGAIN || err == EWOULDBLOCK) return SendResult::kWouldBlock;
    if (err == EINVAL || err == ENOPROTOOPT || err == EOPNOTSUPP) return SendResult::kUnsupported;
    fail(fd, "sendmsg", err);
}

#endif

}  // namespace rtcroom::dscp
