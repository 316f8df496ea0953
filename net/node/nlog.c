/*
 * nlog.c - see nlog.h.
 */
#include "nlog.h"

#include <stdarg.h>
#include <stdio.h>

#include "bnode_internal.h"

void nlog(const struct bnode *node, int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    if (node->opts.log == NULL || level < node->opts.log_level) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    node->opts.log(node->opts.log_arg, level, line);
}
