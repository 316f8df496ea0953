/*
 * log.h - ballotd's log lines: one line per event on stderr, with the time,
 * the level and the node's id, so operators can grep and sort them. The
 * node library prints nothing itself: ballotd hands it blog_line() as its
 * log callback.
 */
#ifndef BALLOT_NET_LOG_H
#define BALLOT_NET_LOG_H

#include <stdint.h>

enum blog_level {
    BLOG_DEBUG = 0,
    BLOG_INFO = 1,
    BLOG_WARN = 2,
    BLOG_ERROR = 3,
};

/* Lines below this level are dropped (BLOG_INFO unless changed). */
void blog_set_level(enum blog_level level);
/* The node id printed on every line (0: none). */
void blog_set_node(uint64_t id);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void blog(enum blog_level level, const char *fmt, ...);

/* Prints one line of @level: the node's log callback (@arg unused). */
void blog_line(void *arg, int level, const char *msg);

#endif
