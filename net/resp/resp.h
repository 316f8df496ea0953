/*
 * resp.h - the client protocol of ballotd: an incremental parser for the
 * requests Redis clients send, and an encoder for the replies they expect,
 * in RESP2 or RESP3.
 *
 * The parser reads the two request forms a Redis server accepts: a multibulk
 * array of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") and an inline
 * command ("GET k\r\n", with "..." and '...' quoting). It never trusts a
 * length it reads: each one is checked against struct resp_limits before
 * anything is allocated or waited for, so a hostile or broken client costs
 * at most the limits in memory. docs/resp.md is the normative description.
 *
 * The encoder appends replies to a growable buffer that refuses to grow past
 * a limit, so the server can tell a client that never reads its replies from
 * one that is merely slow.
 *
 * Neither half does I/O, keeps global state or starts a thread; one parser
 * and one buffer belong to one connection.
 */
#ifndef BALLOT_RESP_H
#define BALLOT_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Return codes. Each module of ballot has its own range; resp's is -4000s.
 * RESP_INCOMPLETE is not a failure: it asks for more input. The protocol
 * errors (-4010 .. -4019) are the client's fault; the server sends
 * resp_parser_errmsg() as an error reply and closes the connection. */
enum {
    RESP_INCOMPLETE = -4001,  /* the request is not complete yet */
    RESP_ENOMEM = -4002,      /* an allocation failed; nothing changed */
    RESP_EINVAL = -4003,      /* an argument is invalid */
    RESP_EMBULKLEN = -4010,   /* "*N": N not a number or above args_max */
    RESP_EBULKLEN = -4011,    /* "$N": N not a number, < 0 or too big */
    RESP_EDOLLAR = -4012,     /* an array element does not start with '$' */
    RESP_EQUOTES = -4013,     /* an inline quote is not closed properly */
    RESP_EINLINE = -4014,     /* an inline line is longer than the limit */
    RESP_EMBULKHDR = -4015,   /* a "*N" line is too long to be a count */
    RESP_EBULKHDR = -4016,    /* a "$N" line is too long to be a length */
    RESP_EBULKEND = -4017,    /* bulk data is not followed by "\r\n" */
    RESP_EREQUEST = -4018,    /* the request is larger than request_bytes_max */
    RESP_EINLINEARGS = -4019, /* an inline request has too many arguments */
    RESP_EOUTPUT = -4030,     /* the reply buffer reached its limit */
};

/* Returns a static description of a resp code (or "unknown error"). For the
 * protocol errors it is the text Redis clients know, without the "ERR "
 * prefix: "Protocol error: invalid bulk length". */
const char *resp_strerror(int code);

/* Allocation hook: all heap use of this module goes through it, so tests
 * can fail the Nth allocation. realloc_fn(ctx, NULL, n) must behave like
 * malloc. A NULL struct or NULL members mean the C library's functions. The
 * struct is copied; ctx is borrowed for the life of the parser or buffer. */
struct resp_allocator
{
    void *ctx;
    void *(*realloc_fn)(void *ctx, void *ptr, size_t size);
    void (*free_fn)(void *ctx, void *ptr);
};

/* ---------------------------------------------------------------------- */
/* Request parser                                                          */

/* Defaults, chosen above kv's own command limits (KV_CMD_BYTES_MAX is 8 MiB)
 * so that an oversized value gets kv's precise error on a live connection
 * rather than a protocol error that closes it. */
#define RESP_ARGS_MAX_DEFAULT (1024u * 1024u)
#define RESP_BULK_BYTES_MAX_DEFAULT (16u * 1024u * 1024u)
#define RESP_INLINE_BYTES_MAX_DEFAULT (64u * 1024u)
#define RESP_REQUEST_BYTES_MAX_DEFAULT (64u * 1024u * 1024u)

/* A count or length line ("*N\r\n", "$N\r\n") may hold at most this many
 * bytes before its "\r"; 21 are enough for any 64-bit number and its sign. */
#define RESP_HEADER_BYTES_MAX 32u

/* The bounds one request must stay within. Every field must be non-zero. */
struct resp_limits
{
    size_t args_max;          /* arguments in one request */
    size_t bulk_bytes_max;    /* bytes in one multibulk argument */
    size_t inline_bytes_max;  /* bytes in one inline line, before "\n" */
    size_t request_bytes_max; /* bytes of one whole request on the wire */
};

/* Fills @limits with the RESP_*_DEFAULT values. */
void resp_limits_default(struct resp_limits *limits);

/* One parsed request. argv[i] points at argvlen[i] bytes of argument i; the
 * bytes may contain any value, including NUL, and are not NUL-terminated.
 * Everything here is borrowed: see resp_parse() for how long it lives. */
struct resp_request
{
    size_t argc; /* at least 1 */
    const char *const *argv;
    const size_t *argvlen;
    bool inline_form; /* true if the request came as an inline command */
};

/* The state of one connection's parser. The caller allocates it; its
 * members are private to resp.c. */
struct resp_parser
{
    struct resp_allocator alloc;
    struct resp_limits limits;
    int state;      /* where inside the current request the parser is */
    int error;      /* the sticky protocol error, or 0 */
    size_t scan;    /* bytes of the current request already examined */
    size_t expect;  /* arguments announced by "*N" */
    size_t bulklen; /* length announced by the current "$N" */
    size_t argc;    /* arguments of the current request seen so far */
    size_t cap;     /* entries in argv, argvlen and argoff */
    const char **argv;
    size_t *argvlen;
    size_t *argoff;   /* argument offsets from the request's first byte */
    char *inline_buf; /* unescaped inline arguments */
    size_t inline_cap;
    char errmsg[64];
};

/**
 * Initializes @p for a new connection.
 *
 * @param p       the parser, caller-allocated
 * @param limits  bounds for each request; copied; NULL means the defaults
 * @param alloc   allocation hook; copied; NULL means the C library
 * @return 0, or RESP_EINVAL if a limit is zero. Nothing is allocated here,
 *         and resp_parser_close() must be called after a successful init.
 */
int resp_parser_init(struct resp_parser *p,
                     const struct resp_limits *limits,
                     const struct resp_allocator *alloc);

/** Frees what @p allocated. The requests it returned become invalid. */
void resp_parser_close(struct resp_parser *p);

/**
 * Parses at most one request from the front of @buf.
 *
 * The caller keeps the bytes it has received but not yet consumed and passes
 * them, followed by any newer bytes, on the next call: the parser remembers
 * how far it has examined the unconsumed bytes, so a request trickling in
 * byte by byte costs linear time. The caller may move those bytes between
 * calls (a realloc'd buffer) but must not change them.
 *
 * @param p         the parser
 * @param buf       received bytes, starting at the first unconsumed one
 * @param len       number of bytes at @buf
 * @param out       receives the request on success
 * @param consumed  set on every return to the number of bytes at the front
 *                  of @buf that the caller must drop before the next call:
 *                  the request on success, skipped empty requests ("\r\n",
 *                  "*0\r\n", "*-1\r\n") otherwise
 * @return 0 with one request in @out;
 *         RESP_INCOMPLETE if @buf holds no complete request (yet);
 *         RESP_ENOMEM if an allocation failed (the call may be repeated);
 *         RESP_EINVAL if @len is shorter than the unconsumed bytes the
 *         parser already examined (the caller broke the contract above);
 *         a protocol error (RESP_EMBULKLEN .. RESP_EINLINEARGS): the
 *         connection is beyond repair, the server should reply with
 *         resp_parser_errmsg() and close it. The error is sticky: later
 *         calls return it again.
 *
 * Ownership: out->argv and out->argvlen belong to @p. A multibulk argument
 * points into @buf, an inline one into @p. Both stay valid until the next
 * resp_parse() or resp_parser_close() on @p, and the multibulk ones only as
 * long as the caller does not move or change the consumed bytes of @buf.
 */
int resp_parse(struct resp_parser *p,
               const char *buf,
               size_t len,
               struct resp_request *out,
               size_t *consumed);

/**
 * Returns the error reply for the parser's sticky protocol error, ready for
 * resp_encode_error(): "ERR " followed by resp_strerror(), with the
 * offending byte added for RESP_EDOLLAR ("ERR Protocol error: expected '$',
 * got 'x'"). Returns "" if there is no error. Borrowed from @p.
 */
const char *resp_parser_errmsg(const struct resp_parser *p);

/* ---------------------------------------------------------------------- */
/* Reply encoder                                                           */

/* A growable buffer of encoded replies. The caller reads data[0..len) and
 * the other members are private to resp.c. */
struct resp_buf
{
    char *data;
    size_t len;
    size_t cap;
    size_t limit; /* len never exceeds this */
    int proto;    /* 2 or 3 */
    struct resp_allocator alloc;
};

/**
 * Initializes @b empty.
 *
 * @param b      the buffer, caller-allocated
 * @param limit  the most bytes @b may hold; reaching it is RESP_EOUTPUT
 * @param proto  2 or 3: the connection's protocol version (HELLO)
 * @param alloc  allocation hook; copied; NULL means the C library
 * @return 0 or RESP_EINVAL. Nothing is allocated until the first encode;
 *         resp_buf_close() must follow a successful init.
 */
int resp_buf_init(struct resp_buf *b,
                  size_t limit,
                  int proto,
                  const struct resp_allocator *alloc);

/** Frees the memory of @b. */
void resp_buf_close(struct resp_buf *b);

/** Switches @b to protocol 2 or 3 (after HELLO). Returns 0 or RESP_EINVAL. */
int resp_buf_set_proto(struct resp_buf *b, int proto);

/** Drops the first @n bytes of @b (they were written to the socket). */
void resp_buf_consume(struct resp_buf *b, size_t n);

/*
 * Every resp_encode_*() below appends one value, or one aggregate header
 * that the caller follows with its elements, and returns 0, RESP_EOUTPUT if
 * the value does not fit under the limit, or RESP_ENOMEM. On failure @b is
 * unchanged, so a half-written value never reaches a client. Data passed in
 * is copied; nothing is retained.
 *
 * The table shows what each call writes for RESP3 and for RESP2.
 *
 *   call            RESP3                     RESP2
 *   simple          +OK\r\n                   same
 *   error           -ERR msg\r\n              same
 *   integer         :42\r\n                   same
 *   bulk            $3\r\nabc\r\n             same
 *   null            _\r\n                     $-1\r\n
 *   null_array      _\r\n                     *-1\r\n
 *   array(n)        *n\r\n                    same
 *   map(n pairs)    %n\r\n                    *2n\r\n
 *   set(n)          ~n\r\n                    *n\r\n
 *   push(n)         >n\r\n                    *n\r\n
 *   double          ,1.5\r\n                  $3\r\n1.5\r\n
 *   boolean         #t\r\n #f\r\n             :1\r\n :0\r\n
 *   bignum          (123\r\n                  $3\r\n123\r\n
 *   verbatim        =7\r\ntxt:abc\r\n         $3\r\nabc\r\n
 */

/** Appends a simple string; "\r" and "\n" in @s are sent as spaces. */
int resp_encode_simple(struct resp_buf *b, const char *s, size_t len);

/** Appends an error; @msg should start with a code such as "ERR"; "\r" and
 * "\n" in it are sent as spaces. */
int resp_encode_error(struct resp_buf *b, const char *msg, size_t len);

/** Appends a signed 64-bit integer. */
int resp_encode_integer(struct resp_buf *b, int64_t v);

/** Appends a binary-safe bulk string; @data may be NULL if @len is 0. */
int resp_encode_bulk(struct resp_buf *b, const void *data, size_t len);

/** Appends a null value (a missing key). */
int resp_encode_null(struct resp_buf *b);

/** Appends a null aggregate (e.g. a transaction that did not run). */
int resp_encode_null_array(struct resp_buf *b);

/** Appends the header of an array of @n elements. */
int resp_encode_array(struct resp_buf *b, size_t n);

/** Appends the header of a map of @npairs key-value pairs; the caller then
 * appends key, value, key, value... RESP2 flattens it into an array. */
int resp_encode_map(struct resp_buf *b, size_t npairs);

/** Appends the header of a set of @n elements (an array in RESP2). */
int resp_encode_set(struct resp_buf *b, size_t n);

/** Appends the header of an out-of-band push of @n elements (an array in
 * RESP2). */
int resp_encode_push(struct resp_buf *b, size_t n);

/** Appends a double with 15 significant digits, or 16 or 17 where fewer
 * would not read back as the same value ("%.15g" style: 0.1, 3, 1e+300);
 * infinities are "inf" and "-inf", NaN is "nan". */
int resp_encode_double(struct resp_buf *b, double v);

/** Appends a boolean (the integer 1 or 0 in RESP2). */
int resp_encode_bool(struct resp_buf *b, bool v);

/** Appends a big number given as decimal digits with an optional leading
 * '-'; RESP_EINVAL if @digits is not one. */
int resp_encode_bignum(struct resp_buf *b, const char *digits, size_t len);

/** Appends a verbatim string; @format is exactly three bytes such as "txt"
 * or "mkd" (RESP_EINVAL otherwise). RESP2 sends the data as a bulk string. */
int resp_encode_verbatim(struct resp_buf *b,
                         const char *format,
                         const void *data,
                         size_t len);

#endif /* BALLOT_RESP_H */
