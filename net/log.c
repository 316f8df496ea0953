/*
 * log.c - see log.h. The level, format and node id are process-wide:
 * ballotd runs one node per process (the node library itself has no
 * global logger).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum blog_level min_level = BLOG_INFO;
static enum blog_format line_format = BLOG_TEXT;
static uint64_t node_id;

void blog_set_level(enum blog_level level)
{
    min_level = level;
}

void blog_set_node(uint64_t id)
{
    node_id = id;
}

void blog_set_format(enum blog_format format)
{
    line_format = format;
}

/* Appends @msg quoted: `"` and `\` escaped, control characters as \n, \t
 * or \u00XX (valid in both formats' strings). */
static size_t put_quoted(char *buf, size_t len, size_t at, const char *msg)
{
    static const char hex[] = "0123456789abcdef";
    if (at + 1 < len) {
        buf[at++] = '"';
    }
    for (const unsigned char *p = (const unsigned char *)msg; *p != '\0'; p++) {
        char esc[7];
        size_t n = 0;
        if (*p == '"' || *p == '\\') {
            esc[n++] = '\\';
            esc[n++] = (char)*p;
        } else if (*p == '\n') {
            esc[n++] = '\\';
            esc[n++] = 'n';
        } else if (*p == '\t') {
            esc[n++] = '\\';
            esc[n++] = 't';
        } else if (*p < 0x20 || *p == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            n = 6;
        } else {
            esc[n++] = (char)*p;
        }
        if (at + n + 2 >= len) {
            break; /* cut: room for the closing quote */
        }
        memcpy(buf + at, esc, n);
        at += n;
    }
    if (at + 1 < len) {
        buf[at++] = '"';
    }
    return at;
}

size_t blog_format_line(enum blog_format format,
                        uint64_t ts_ms,
                        int level,
                        uint64_t node,
                        const char *msg,
                        char *buf,
                        size_t len)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    char ts[64];
    struct tm tm;
    time_t sec = (time_t)(ts_ms / 1000);
    if (level < BLOG_DEBUG || level > BLOG_ERROR) {
        level = BLOG_ERROR;
    }
    gmtime_r(&sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ts_ms % 1000));
    int n = format == BLOG_JSON
                ? snprintf(buf, len,
                           "{\"ts\":\"%s\",\"level\":\"%s\",\"node\":%llu,"
                           "\"msg\":",
                           ts, names[level], (unsigned long long)node)
                : snprintf(buf, len, "ts=%s level=%s node=%llu msg=", ts,
                           names[level], (unsigned long long)node);
    size_t at = n > 0 && (size_t)n < len ? (size_t)n : 0;
    at = put_quoted(buf, len, at, msg);
    if (format == BLOG_JSON && at + 1 < len) {
        buf[at++] = '}';
    }
    if (at + 1 < len) {
        buf[at++] = '\n';
    }
    buf[at < len ? at : len - 1] = '\0';
    return at;
}

void blog_line(void *arg, int level, const char *line)
{
    /* Escaping may take up to six bytes for one: room for any message. */
    char out[BLOG_MSG_MAX * 6 + 128];
    struct timespec ts;
    (void)arg;
    if (level < (int)min_level) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    size_t n = blog_format_line(
        line_format,
        (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u, level,
        node_id, line, out, sizeof(out));
    /* One write per line, so that lines of threads never interleave. */
    fwrite(out, 1, n, stderr);
}

void blog(enum blog_level level, const char *fmt, ...)
{
    char line[BLOG_MSG_MAX];
    va_list ap;
    if (level < min_level) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    blog_line(NULL, (int)level, line);
}
