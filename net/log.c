/*
 * log.c - see log.h. The level and node id are process-wide: ballotd runs
 * one node per process (the node library itself has no global logger).
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

void blog_line(void *arg, int level, const char *line)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    struct timespec ts;
    struct tm tm;
    (void)arg;
    if (level < (int)min_level) {
        return;
    }
    if (level < BLOG_DEBUG || level > BLOG_ERROR) {
        level = BLOG_ERROR;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ n%llu %s: %s\n",
            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
            tm.tm_sec, ts.tv_nsec / 1000000, (unsigned long long)node_id,
            names[level], line);
}

void blog(enum blog_level level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    if (level < min_level) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    blog_line(NULL, (int)level, line);
}
