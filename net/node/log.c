/*
 * log.c - see log.h. The level and node id are process-wide: ballotd runs
 * one node per process.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum blog_level min_level = BLOG_INFO;
static uint64_t node_id;

void blog_set_level(enum blog_level level)
{
    min_level = level;
}

void blog_set_node(uint64_t id)
{
    node_id = id;
}

void blog(enum blog_level level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    char line[1024];
    struct timespec ts;
    struct tm tm;
    va_list ap;

    if (level < min_level) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ n%llu %s: %s\n",
            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
            tm.tm_sec, ts.tv_nsec / 1000000, (unsigned long long)node_id,
            names[level], line);
}
