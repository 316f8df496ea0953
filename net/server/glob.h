/*
 * glob.h - Redis-style glob patterns (stringmatch rules: * ? [abc] [^a]
 * [a-z] \x) matched in time bounded by the subject, whatever the pattern.
 *
 * A pattern is compiled once (linear in its length) into a list of tokens
 * and matched as a nondeterministic automaton simulated with bit sets (one
 * bit per token): no backtracking, so each subject byte costs the same
 * small number of word operations (the tokens / 64) however many stars and
 * classes the pattern has. A pattern needing more bytes than the longest
 * subject can never match and is compiled to nothing. KEYS and SCAN MATCH
 * use it (a backtracking matcher took 113 s for 200 keys with one long
 * class: issue 11).
 */
#ifndef BALLOT_NET_GLOB_H
#define BALLOT_NET_GLOB_H

#include <stdbool.h>
#include <stddef.h>

struct glob;

/**
 * Compiles @pat (@plen bytes, not NUL-terminated) for subjects of at most
 * @subject_max bytes; @nocase folds ASCII letters.
 *
 * @return 0 with *@out set (free with glob_free()), or -1 if out of
 *         memory.
 */
int glob_compile(const char *pat,
                 size_t plen,
                 size_t subject_max,
                 bool nocase,
                 struct glob **out);

/** Whether @s (@slen bytes, at most the compiled subject_max) matches. */
bool glob_match(const struct glob *g, const char *s, size_t slen);

void glob_free(struct glob *g);

#endif
