/*
 * member_addr.c - the text form of a member's addresses,
 * "IP:CLIENT_PORT[:PEER_PORT]", shared by the configuration file, the
 * BMEMBER command and the addresses recorded in the log. A library of its
 * own so that the server and the node driver can both use it without
 * linking each other.
 */
#include <arpa/inet.h>
#include <string.h>

#include "bnode.h"

/* Parses a decimal port in 1..65535; -1 if it is not one. */
static int parse_port(const char *s, size_t len)
{
    int v = 0;
    if (len == 0 || len > 5) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

int bnode_member_parse_addr(const char *text,
                            size_t len,
                            struct bnode_member *m)
{
    const char *c1 = memchr(text, ':', len);
    if (c1 == NULL || c1 == text || (size_t)(c1 - text) >= BNODE_HOST_MAX) {
        return -1;
    }
    const char *rest = c1 + 1;
    size_t rest_len = len - (size_t)(rest - text);
    const char *c2 = memchr(rest, ':', rest_len);
    int client = parse_port(rest, c2 ? (size_t)(c2 - rest) : rest_len);
    int peer = client + 1;
    if (c2 != NULL) {
        peer = parse_port(c2 + 1, rest_len - (size_t)(c2 + 1 - rest));
    }
    if (client < 0 || peer < 1 || peer > 65535) {
        return -1;
    }
    for (const char *p = text; p < c1; p++) {
        if (*p <= ' ' || *p == '=' || *p > '~') {
            return -1;
        }
    }
    /* A numeric IPv4 address only: a host name would need a lookup, which
     * blocks, and the transport dials members from the event loop (on a
     * membership change, a reconnect, any time). */
    struct in_addr ip;
    memcpy(m->host, text, (size_t)(c1 - text));
    m->host[c1 - text] = '\0';
    if (inet_pton(AF_INET, m->host, &ip) != 1) {
        return -2;
    }
    m->client_port = client;
    m->peer_port = peer;
    return 0;
}
