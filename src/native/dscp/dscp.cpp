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
#include <netinet/in.h>
#include <netinet/ip.h>
#include <sys/socket.h>
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
    if (traffic_class < 0 || traffic_class > 255) {
        throw std::invalid_argument("traffic class must be 0..255, got " +
                                    std::to_string(traffic_class));
    }
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

}  // namespace rtcroom::dscp
