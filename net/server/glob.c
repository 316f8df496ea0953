/*
 * glob.c - see glob.h.
 *
 * Tokens t[0..n): a literal byte, any byte (?), a class ([...], a 256-bit
 * set) or a star; runs of stars are one star. State i means "the first i
 * tokens matched"; state n accepts. A star at i loops on any byte and
 * lets state i + 1 be entered without a byte. With D the set of states
 * (bit i for state i), STAR the star tokens and B[c] the non-star tokens
 * that accept byte c, one byte is
 *
 *     D = ((D & ~STAR & B[c]) << 1) | (D & STAR);   D |= (D & STAR) << 1
 *
 * (no star follows a star, so one closure step suffices).
 */
#include "glob.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { TOK_BYTE, TOK_ANY, TOK_CLASS, TOK_STAR };

struct tok
{
    int kind;
    unsigned char byte;
    uint64_t set[4]; /* TOK_CLASS: the bytes it accepts */
};

struct glob
{
    bool never; /* needs more bytes than any subject has */
    bool nocase;
    size_t n;         /* tokens; states are 0..n */
    size_t words;     /* 64-bit words per state set */
    uint64_t *star;   /* [words] */
    uint64_t *accept; /* [256][words]: B[c] */
    uint64_t *d;      /* [2][words]: scratch for glob_match */
};

static unsigned char fold(unsigned char c, bool nocase)
{
    return nocase && c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static void set_add(uint64_t *set, unsigned char c)
{
    set[c >> 6] |= (uint64_t)1 << (c & 63);
}

static bool set_has(const uint64_t *set, unsigned char c)
{
    return (set[c >> 6] >> (c & 63)) & 1;
}

/* Parses the class at @p[*pi] (just after '[') into @t, with the same
 * rules as Redis's stringmatchlen: ^ negates, \x is x, a-z is a range
 * (either way round), an unclosed class runs to the end. */
static void parse_class(const char *p,
                        size_t plen,
                        size_t *pi,
                        bool nocase,
                        struct tok *t)
{
    size_t i = *pi;
    bool neg = false;
    uint64_t hit[4] = {0, 0, 0, 0};
    if (i < plen && p[i] == '^') {
        neg = true;
        i++;
    }
    for (; i < plen && p[i] != ']'; i++) {
        if (p[i] == '\\' && i + 1 < plen) {
            i++;
            set_add(hit, fold((unsigned char)p[i], nocase));
        } else if (i + 2 < plen && p[i + 1] == '-' && p[i + 2] != ']') {
            unsigned lo = fold((unsigned char)p[i], nocase);
            unsigned hi = fold((unsigned char)p[i + 2], nocase);
            if (lo > hi) {
                unsigned x = lo;
                lo = hi;
                hi = x;
            }
            for (unsigned c = lo; c <= hi; c++) {
                set_add(hit, (unsigned char)c);
            }
            i += 2;
        } else {
            set_add(hit, fold((unsigned char)p[i], nocase));
        }
    }
    *pi = i < plen ? i + 1 : i;
    t->kind = TOK_CLASS;
    for (int w = 0; w < 4; w++) {
        t->set[w] = neg ? ~hit[w] : hit[w];
    }
}

/* Tokenizes @pat; returns the count, or SIZE_MAX when more than @max
 * non-star tokens are needed (the pattern can never match). @toks may be
 * NULL to count only. */
static size_t tokenize(const char *p,
                       size_t plen,
                       size_t max,
                       bool nocase,
                       struct tok *toks)
{
    size_t n = 0, solid = 0, i = 0;
    while (i < plen) {
        struct tok t;
        memset(&t, 0, sizeof(t));
        char c = p[i];
        if (c == '*') {
            while (i < plen && p[i] == '*') {
                i++;
            }
            t.kind = TOK_STAR;
        } else if (c == '?') {
            t.kind = TOK_ANY;
            i++;
        } else if (c == '[') {
            i++;
            parse_class(p, plen, &i, nocase, &t);
        } else {
            if (c == '\\' && i + 1 < plen) {
                i++;
            }
            t.kind = TOK_BYTE;
            t.byte = fold((unsigned char)p[i], nocase);
            i++;
        }
        if (t.kind != TOK_STAR && ++solid > max) {
            return SIZE_MAX;
        }
        if (toks != NULL) {
            toks[n] = t;
        }
        n++;
    }
    return n;
}

int glob_compile(const char *pat,
                 size_t plen,
                 size_t subject_max,
                 bool nocase,
                 struct glob **out)
{
    struct glob *g = calloc(1, sizeof(*g));
    struct tok *toks = NULL;
    if (g == NULL) {
        return -1;
    }
    g->nocase = nocase;
    size_t n = tokenize(pat, plen, subject_max, nocase, NULL);
    if (n == SIZE_MAX) {
        g->never = true;
        *out = g;
        return 0;
    }
    /* At most 2 * subject_max + 1 tokens (stars between solid ones). */
    g->n = n;
    g->words = (n + 1 + 63) / 64;
    toks = calloc(n ? n : 1, sizeof(*toks));
    g->star = calloc(g->words, sizeof(uint64_t));
    g->accept = calloc(256 * g->words, sizeof(uint64_t));
    g->d = calloc(2 * g->words, sizeof(uint64_t));
    if (toks == NULL || g->star == NULL || g->accept == NULL || g->d == NULL) {
        free(toks);
        glob_free(g);
        return -1;
    }
    (void)tokenize(pat, plen, subject_max, nocase, toks);
    for (size_t i = 0; i < n; i++) {
        uint64_t bit = (uint64_t)1 << (i & 63);
        size_t w = i >> 6;
        switch (toks[i].kind) {
        case TOK_STAR:
            g->star[w] |= bit;
            break;
        case TOK_ANY:
            for (unsigned c = 0; c < 256; c++) {
                g->accept[c * g->words + w] |= bit;
            }
            break;
        case TOK_BYTE:
            g->accept[toks[i].byte * g->words + w] |= bit;
            break;
        default:
            for (unsigned c = 0; c < 256; c++) {
                if (set_has(toks[i].set, (unsigned char)c)) {
                    g->accept[c * g->words + w] |= bit;
                }
            }
            break;
        }
    }
    free(toks);
    *out = g;
    return 0;
}

/* d |= (d & star) << 1: a star's state also enters the next one. */
static void closure(const struct glob *g, uint64_t *d)
{
    uint64_t carry = 0;
    for (size_t w = 0; w < g->words; w++) {
        uint64_t s = d[w] & g->star[w];
        uint64_t next = s >> 63;
        d[w] |= (s << 1) | carry;
        carry = next;
    }
}

bool glob_match(const struct glob *g, const char *s, size_t slen)
{
    if (g->never) {
        return false;
    }
    uint64_t *d = g->d;
    uint64_t *e = g->d + g->words;
    memset(d, 0, g->words * sizeof(uint64_t));
    d[0] = 1;
    closure(g, d);
    for (size_t i = 0; i < slen; i++) {
        unsigned char c = fold((unsigned char)s[i], g->nocase);
        const uint64_t *b = g->accept + (size_t)c * g->words;
        uint64_t carry = 0, any = 0;
        for (size_t w = 0; w < g->words; w++) {
            uint64_t step = d[w] & ~g->star[w] & b[w];
            e[w] = (step << 1) | carry | (d[w] & g->star[w]);
            carry = step >> 63;
            any |= e[w];
        }
        if (any == 0) {
            return false;
        }
        closure(g, e);
        uint64_t *t = d;
        d = e;
        e = t;
    }
    return (d[g->n >> 6] >> (g->n & 63)) & 1;
}

void glob_free(struct glob *g)
{
    if (g == NULL) {
        return;
    }
    free(g->star);
    free(g->accept);
    free(g->d);
    free(g);
}
