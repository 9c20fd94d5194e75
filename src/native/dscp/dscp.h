// Traffic class (DSCP + ECN byte) on a socket, by descriptor: IP_TOS for IPv4, IPV6_TCLASS for IPv6.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace rtcroom::dscp {

// The descriptor is closed or is not a socket.
struct BadSocket : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// The OS answered with an errno the caller cannot do anything about.
struct SocketError : std::runtime_error {
    SocketError(int err, const std::string &what) : std::runtime_error(what), err(err) {}
    int err;
};

// Address family of the socket (AF_INET, AF_INET6, ...); throws BadSocket.
int socket_family(std::intptr_t fd);

// Sets the traffic class byte (0..255; DSCP is its top six bits). Returns false when the OS
// refuses the option (some platforms and sandboxes do), so the caller can warn and go on.
// Throws BadSocket, std::invalid_argument for a value or family out of range, SocketError.
bool set_traffic_class(std::intptr_t fd, int traffic_class);

// Reads the traffic class byte back.
int get_traffic_class(std::intptr_t fd);

enum class SendResult { kSent, kWouldBlock, kUnsupported };

// Sends one datagram to a numeric host (IPv4, IPv6 with optional %scope; an IPv4 host on an IPv6
// socket goes as ::ffff:a.b.c.d) and port, with the traffic class given as ancillary data
// (IP_TOS / IPV6_TCLASS) so only this packet carries it. kWouldBlock: the send buffer is full and
// nothing was sent. kUnsupported: the platform has no per-packet marking for this family
// (Windows; IPv4 on macOS and other BSDs). Throws BadSocket, std::invalid_argument for a bad
// host, port, value or family, SocketError for any other failure.
SendResult send_marked(std::intptr_t fd, const void *data, std::size_t size, const std::string &host,
                       int port, int traffic_class);

}  // namespace rtcroom::dscp
