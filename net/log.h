/*
 * log.h - ballotd's log lines: one line per event on stderr, with the time,
 * the level and the node's id, in one of two stable formats (the
 * log_format setting; docs/operations.md, "Log lines"):
 *
 *   text: ts=2026-12-07T00:56:01.532Z level=info node=1 msg="now leader ..."
 *   json: {"ts":"2026-12-07T00:56:01.532Z","level":"info","node":1,
 *          "msg":"now leader ..."}
 *
 * so operators can grep, sort and ship them. The node library prints
 * nothing itself: ballotd hands it blog_line() as its log callback.
 */
#ifndef BALLOT_NET_LOG_H
#define BALLOT_NET_LOG_H

#include <stddef.h>
#include <stdint.h>

enum blog_level {
    BLOG_DEBUG = 0,
    BLOG_INFO = 1,
    BLOG_WARN = 2,
    BLOG_ERROR = 3,
};

enum blog_format {
    BLOG_TEXT = 0, /* key=value */
    BLOG_JSON = 1, /* one JSON object per line */
};

/* The longest message kept; a longer one is cut. */
#define BLOG_MSG_MAX 1024

/* Lines below this level are dropped (BLOG_INFO unless changed). */
void blog_set_level(enum blog_level level);
/* The node id printed on every line (0 until known). */
void blog_set_node(uint64_t id);
/* The format of the lines from now on (BLOG_TEXT unless changed). */
void blog_set_format(enum blog_format format);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void blog(enum blog_level level, const char *fmt, ...);

/* Prints one line of @level: the node's log callback (@arg unused). */
void blog_line(void *arg, int level, const char *msg);

/* Formats one line of @level, @node and @msg at @ts_ms (Unix time, ms)
 * into @buf (@len bytes, with a newline); returns its length. For tests. */
size_t blog_format_line(enum blog_format format,
                        uint64_t ts_ms,
                        int level,
                        uint64_t node,
                        const char *msg,
                        char *buf,
                        size_t len);

#endif
