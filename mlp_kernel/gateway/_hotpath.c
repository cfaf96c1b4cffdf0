/* _hotpath: the gateway's I/O thread's wait, and the messages that need no Python, in C (pump.py).

Why: per `pass` round trip the I/O thread relayed two messages in Python (the request, which it screens, and
the reply), ~150-180 us of CPU each on the 2-core development machine, and the relay alone cost 1.14-1.17x of a
plain ipykernel against the 1.10x of issue 17; libzmq's proxy, the same relay in C, costs 1.04-1.08x
(docs/benchmarks.md, "The relay's floor"). This module does, in the I/O thread, what the Python loop did for
those two messages, with the same rules, and hands everything else back to Python untouched:

- it waits on the pump's own epoll set (the sockets' ZMQ_FD descriptors), with the GIL released;
- a reply from the remote kernel's shell or control channel that carries a client identity goes to the client's
  socket of the same channel, and a copy of its frames to the pump's bookkeeping (``done``);
- a request on the client's shell channel goes to the remote kernel only when the pump allows it (``shell_ok``:
  a remote kernel is serving and the loop has nothing of that channel in hand), the loop has queued no command,
  its HMAC-SHA256 signature is valid, its header's ``msg_type`` is one of the ``types`` given, and, for
  ``execute_request``, its content holds neither ``%gpu`` nor a JSON ``\u`` escape (which could spell it);
  anything else, or anything this code cannot read with certainty, is handed back (``stash``) and the Python
  path decides, as it always did;
- it returns when a socket that Python serves is ready, when it handed a message back, when the bookkeeping is
  due, or at the timeout.

It reads no more than the header (as strict JSON, for its ``msg_type``), and checks the signature before
that. libzmq is the copy pyzmq loaded (``load``), so the sockets are pyzmq's, used only in the pump's thread. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------- libzmq */
typedef struct {
    unsigned char _[64] __attribute__((aligned(sizeof(void *))));
} zmq_msg_t;

#define Z_DONTWAIT 1
#define Z_SNDMORE 2
#define Z_RCVMORE 13
#define Z_FD 14
#define Z_EVENTS 15
#define Z_POLLIN 1

static int (*z_msg_init)(zmq_msg_t *);
static int (*z_msg_recv)(zmq_msg_t *, void *, int);
static int (*z_msg_send)(zmq_msg_t *, void *, int);
static int (*z_msg_close)(zmq_msg_t *);
static int (*z_msg_copy)(zmq_msg_t *, zmq_msg_t *);
static void *(*z_msg_data)(zmq_msg_t *);
static size_t (*z_msg_size)(const zmq_msg_t *);
static int (*z_msg_more)(const zmq_msg_t *);
static int (*z_getsockopt)(void *, int, void *, size_t *);
static int (*z_errno)(void);
static void (*z_version)(int *, int *, int *);
static int z_loaded = 0;

static PyObject *load(PyObject *mod, PyObject *args) {
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD); /* the copy already loaded by pyzmq, never another one */
    if (h == NULL) {
        PyErr_Format(PyExc_OSError, "%s is not loaded in this process: %s", path, dlerror());
        return NULL;
    }
#define SYM(var, name)                                                                     \
    *(void **)(&var) = dlsym(h, name);                                                     \
    if (var == NULL) {                                                                     \
        PyErr_Format(PyExc_OSError, "%s does not export %s", path, name);                  \
        return NULL;                                                                       \
    }
    SYM(z_msg_init, "zmq_msg_init");
    SYM(z_msg_recv, "zmq_msg_recv");
    SYM(z_msg_send, "zmq_msg_send");
    SYM(z_msg_close, "zmq_msg_close");
    SYM(z_msg_copy, "zmq_msg_copy");
    SYM(z_msg_data, "zmq_msg_data");
    SYM(z_msg_size, "zmq_msg_size");
    SYM(z_msg_more, "zmq_msg_more");
    SYM(z_getsockopt, "zmq_getsockopt");
    SYM(z_errno, "zmq_errno");
    SYM(z_version, "zmq_version");
#undef SYM
    int major, minor, patch;
    z_version(&major, &minor, &patch);
    z_loaded = 1;
    return Py_BuildValue("(iii)", major, minor, patch);
}

/* ---------------------------------------------------------------------------------------- HMAC-SHA256 */
typedef struct {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t fill;
} sha256_t;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(sha256_t *s, const unsigned char *p) {
    uint32_t w[64], a, b, c, d, e, f, g, h, t1, t2;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
    for (int i = 0; i < 64; i++) {
        t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d, s->h[4] += e, s->h[5] += f, s->h[6] += g, s->h[7] += h;
}

static void sha256_init(sha256_t *s) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv);
    s->len = 0;
    s->fill = 0;
}

static void sha256_update(sha256_t *s, const unsigned char *p, size_t n) {
    s->len += n;
    if (s->fill) {
        size_t take = 64 - s->fill < n ? 64 - s->fill : n;
        memcpy(s->buf + s->fill, p, take);
        s->fill += take, p += take, n -= take;
        if (s->fill < 64) return;
        sha256_block(s, s->buf);
        s->fill = 0;
    }
    for (; n >= 64; p += 64, n -= 64) sha256_block(s, p);
    memcpy(s->buf, p, n);
    s->fill = n;
}

static void sha256_final(sha256_t *s, unsigned char out[32]) {
    uint64_t bits = s->len * 8;
    unsigned char pad = 0x80, zero = 0, lenbuf[8];
    sha256_update(s, &pad, 1);
    while (s->fill != 56) sha256_update(s, &zero, 1);
    for (int i = 0; i < 8; i++) lenbuf[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_update(s, lenbuf, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(s->h[i] >> 24), out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s->h[i] >> 8), out[4 * i + 3] = (unsigned char)s->h[i];
    }
}

typedef struct {
    sha256_t inner_start, outer_start; /* the key's two padded blocks, hashed once */
} hmac_key_t;

static void hmac_key_init(hmac_key_t *k, const unsigned char *key, size_t n) {
    unsigned char block[64] = {0}, ipad[64], opad[64];
    if (n > 64) {
        sha256_t s;
        sha256_init(&s);
        sha256_update(&s, key, n);
        sha256_final(&s, block);
    } else {
        memcpy(block, key, n);
    }
    for (int i = 0; i < 64; i++) ipad[i] = block[i] ^ 0x36, opad[i] = block[i] ^ 0x5c;
    sha256_init(&k->inner_start);
    sha256_update(&k->inner_start, ipad, 64);
    sha256_init(&k->outer_start);
    sha256_update(&k->outer_start, opad, 64);
}

/* HMAC over ``n`` parts, as hex (64 characters). */
static void hmac_hex(const hmac_key_t *k, const unsigned char **parts, const size_t *sizes, int n, char out[64]) {
    static const char hexdigits[] = "0123456789abcdef";
    unsigned char digest[32];
    sha256_t s = k->inner_start;
    for (int i = 0; i < n; i++) sha256_update(&s, parts[i], sizes[i]);
    sha256_final(&s, digest);
    s = k->outer_start;
    sha256_update(&s, digest, 32);
    sha256_final(&s, digest);
    for (int i = 0; i < 32; i++) out[2 * i] = hexdigits[digest[i] >> 4], out[2 * i + 1] = hexdigits[digest[i] & 15];
}

static PyObject *py_hmac_sha256_hex(PyObject *mod, PyObject *args) {
    Py_buffer key, data;
    if (!PyArg_ParseTuple(args, "y*y*", &key, &data)) return NULL;
    hmac_key_t k;
    char out[64];
    const unsigned char *parts[1] = {data.buf};
    size_t sizes[1] = {(size_t)data.len};
    hmac_key_init(&k, key.buf, (size_t)key.len);
    hmac_hex(&k, parts, sizes, 1, out);
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    return PyBytes_FromStringAndSize(out, 64);
}

/* --------------------------------------------------------------------------------- the header's msg_type */
static size_t skip_ws(const char *s, size_t i, size_t n) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

/* The header is read as strict JSON (RFC 8259, UTF-8): C reads a type only from a header that Python's
   json.loads reads the same (a subset of what it accepts: no NaN/Infinity, no surrogates encoded in UTF-8,
   at most MAX_DEPTH levels). Python's path drops a header that is not JSON, so C must never forward one. */
#define MAX_DEPTH 32

static int is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* One UTF-8 sequence starting with the byte at s[i] >= 0x80: its length, or 0 when it is not valid UTF-8
   (overlong, a surrogate, above U+10FFFF, cut short). */
static size_t utf8_len(const unsigned char *s, size_t i, size_t n) {
    unsigned char c = s[i];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (size_t k = 2; k < len; k++)
        if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
    return len;
}

/* A JSON string at s[i] == '"': the index after its closing quote, or 0 when it is not a valid one.
   *escaped: it holds a backslash. */
static size_t skip_string(const char *s, size_t i, size_t n, int *escaped) {
    const unsigned char *u = (const unsigned char *)s;
    *escaped = 0;
    for (i++; i < n;) {
        unsigned char c = u[i];
        if (c == '"') return i + 1;
        if (c < 0x20) return 0; /* json.loads is strict: no control characters */
        if (c == '\\') {
            *escaped = 1;
            if (i + 1 >= n) return 0;
            char e = s[i + 1];
            if (e == 'u') {
                if (n - i < 6 || !is_hex(s[i + 2]) || !is_hex(s[i + 3]) || !is_hex(s[i + 4]) || !is_hex(s[i + 5]))
                    return 0;
                i += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                i += 2;
            } else {
                return 0;
            }
        } else if (c >= 0x80) {
            size_t len = utf8_len(u, i, n);
            if (len == 0) return 0;
            i += len;
        } else {
            i++;
        }
    }
    return 0;
}

static size_t skip_digits(const char *s, size_t i, size_t n) {
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    return i;
}

/* A JSON number at s[i]: the index after it, or 0. */
static size_t skip_number(const char *s, size_t i, size_t n) {
    if (i < n && s[i] == '-') i++;
    if (i >= n) return 0;
    if (s[i] == '0') i++;
    else if (s[i] >= '1' && s[i] <= '9') i = skip_digits(s, i, n);
    else return 0;
    if (i < n && s[i] == '.') {
        size_t j = skip_digits(s, i + 1, n);
        if (j == i + 1) return 0;
        i = j;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t j = skip_digits(s, i, n);
        if (j == i) return 0;
        i = j;
    }
    return i;
}

static size_t skip_literal(const char *s, size_t i, size_t n, const char *word, size_t k) {
    return n - i >= k && memcmp(s + i, word, k) == 0 ? i + k : 0;
}

/* Any JSON value at s[i] (no whitespace before it): the index after it, or 0 when it is not a valid one. */
static size_t skip_value(const char *s, size_t i, size_t n, int depth) {
    int escaped;
    if (i >= n) return 0;
    char c = s[i];
    if (c == '"') return skip_string(s, i, n, &escaped);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        if (depth >= MAX_DEPTH) return 0;
        i = skip_ws(s, i + 1, n);
        if (i < n && s[i] == close) return i + 1;
        for (;;) {
            if (c == '{') {
                if (i >= n || s[i] != '"') return 0;
                i = skip_string(s, i, n, &escaped);
                if (i == 0) return 0;
                i = skip_ws(s, i, n);
                if (i >= n || s[i] != ':') return 0;
                i = skip_ws(s, i + 1, n);
            }
            i = skip_value(s, i, n, depth + 1);
            if (i == 0) return 0;
            i = skip_ws(s, i, n);
            if (i < n && s[i] == ',') {
                i = skip_ws(s, i + 1, n);
                continue;
            }
            return i < n && s[i] == close ? i + 1 : 0;
        }
    }
    if (c == 't') return skip_literal(s, i, n, "true", 4);
    if (c == 'f') return skip_literal(s, i, n, "false", 5);
    if (c == 'n') return skip_literal(s, i, n, "null", 4);
    return skip_number(s, i, n);
}

/* The header's top-level "msg_type": 1 and its bytes (no escapes); 0 when the header is not one this reads
   with certainty (not strict JSON, not an object, no or two msg_type keys, an escaped key or type): Python
   decides. */
static int header_msg_type(const char *s, size_t n, const char **val, size_t *vlen) {
    int found = 0, escaped;
    size_t i = skip_ws(s, 0, n);
    if (i >= n || s[i] != '{') return 0;
    i = skip_ws(s, i + 1, n);
    if (i < n && s[i] == '}') return 0;
    for (;;) {
        if (i >= n || s[i] != '"') return 0;
        size_t kstart = i + 1, kend = skip_string(s, i, n, &escaped);
        if (kend == 0 || escaped) return 0;
        i = skip_ws(s, kend, n);
        if (i >= n || s[i] != ':') return 0;
        i = skip_ws(s, i + 1, n);
        if (kend - 1 - kstart == 8 && memcmp(s + kstart, "msg_type", 8) == 0) {
            if (found || i >= n || s[i] != '"') return 0;
            size_t vend = skip_string(s, i, n, &escaped);
            if (vend == 0 || escaped) return 0;
            *val = s + i + 1;
            *vlen = vend - 1 - (i + 1);
            found = 1;
            i = vend;
        } else {
            i = skip_value(s, i, n, 1);
            if (i == 0) return 0;
        }
        i = skip_ws(s, i, n);
        if (i < n && s[i] == ',') {
            i = skip_ws(s, i + 1, n);
            continue;
        }
        if (i < n && s[i] == '}') return found && skip_ws(s, i + 1, n) == n; /* nothing after it */
        return 0;
    }
}

static PyObject *py_msg_type(PyObject *mod, PyObject *args) {
    Py_buffer header;
    if (!PyArg_ParseTuple(args, "y*", &header)) return NULL;
    const char *val;
    size_t vlen;
    int ok = header_msg_type(header.buf, (size_t)header.len, &val, &vlen);
    PyObject *r = ok ? PyBytes_FromStringAndSize(val, (Py_ssize_t)vlen) : Py_NewRef(Py_None);
    PyBuffer_Release(&header);
    return r;
}

/* ------------------------------------------------------------------------------------------- the serve loop */
enum { ROLE_PYTHON = 0, ROLE_CLIENT_SHELL = 1, ROLE_REMOTE_SHELL = 2, ROLE_REMOTE_CONTROL = 3 };
#define MAX_WATCHED 64
#define MAX_TYPES 16
#define MAX_TYPE_LEN 40

typedef struct {
    PyObject_HEAD int epfd;
    int nwatched;
    int fds[MAX_WATCHED];
    int roles[MAX_WATCHED];
    void *sock[4];        /* by role: -, client shell, remote shell, remote control */
    void *client_control; /* where control replies go (a socket Python serves) */
    void *inner;          /* the loop's commands: they go before any request */
    int client_control_fd;
    int sign; /* 1: verify HMAC-SHA256 with key; 0: no key (unsigned messages); -1: never forward requests */
    hmac_key_t key;
    atomic_int fast; /* the loop's Pump.fast, read for every request */
    int ntypes;
    char types[MAX_TYPES][MAX_TYPE_LEN];
    size_t type_lens[MAX_TYPES];
    long long forwarded_requests, forwarded_replies, handed_back;
} HotPath;

typedef struct {
    zmq_msg_t *parts;
    int n, cap;
} frames_t;

static void frames_close(frames_t *f) {
    for (int i = 0; i < f->n; i++) z_msg_close(&f->parts[i]);
    f->n = 0;
}

/* 1 when a message waits, 0 when none, -1 with errno when the socket failed (ETERM: the context ended; the
   pump raises zmq.ContextTerminated and its thread ends, as it does when pyzmq raises it). */
static int sock_readable(void *sock) {
    int events = 0;
    size_t len = sizeof events;
    if (z_getsockopt(sock, Z_EVENTS, &events, &len) != 0) {
        errno = z_errno();
        return -1;
    }
    return (events & Z_POLLIN) != 0;
}

/* Receive one whole message (sock was readable): 0, or -1 with errno when nothing was there. */
static int recv_message(void *sock, frames_t *f) {
    f->n = 0;
    for (;;) {
        if (f->n == f->cap) {
            int cap = f->cap ? f->cap * 2 : 16;
            zmq_msg_t *p = PyMem_Realloc(f->parts, sizeof(zmq_msg_t) * (size_t)cap);
            if (p == NULL) {
                frames_close(f);
                errno = ENOMEM;
                return -1;
            }
            f->parts = p, f->cap = cap;
        }
        zmq_msg_t *m = &f->parts[f->n];
        z_msg_init(m);
        if (z_msg_recv(m, sock, f->n == 0 ? Z_DONTWAIT : 0) < 0) {
            int err = z_errno();
            z_msg_close(m);
            frames_close(f);
            errno = err;
            return -1;
        }
        f->n++;
        if (!z_msg_more(m)) return 0;
    }
}

static PyObject *frames_as_list(frames_t *f) {
    PyObject *list = PyList_New(f->n);
    if (list == NULL) return NULL;
    for (int i = 0; i < f->n; i++) {
        PyObject *b = PyBytes_FromStringAndSize(z_msg_data(&f->parts[i]), (Py_ssize_t)z_msg_size(&f->parts[i]));
        if (b == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, b);
    }
    return list;
}

/* Send every frame of f on sock, without waiting: 0; -1 when the first frame could not go (f is kept). */
static int send_message(void *sock, frames_t *f) {
    for (int i = 0; i < f->n; i++) {
        if (z_msg_send(&f->parts[i], sock, (i + 1 < f->n ? Z_SNDMORE : 0) | Z_DONTWAIT) < 0) {
            if (i == 0) return -1;
            /* libzmq takes a multipart message whole or not at all: only a closed socket fails here */
            for (int j = i; j < f->n; j++) z_msg_close(&f->parts[j]);
            f->n = 0;
            return 0;
        }
    }
    f->n = 0; /* sent: the frames belong to libzmq now */
    return 0;
}

static int is_delim(zmq_msg_t *m) {
    return z_msg_size(m) == 9 && memcmp(z_msg_data(m), "<IDS|MSG>", 9) == 0;
}

static int contains(const char *hay, size_t n, const char *needle, size_t k) {
    return n >= k && memmem(hay, n, needle, k) != NULL;
}

/* May this client shell request go to the remote kernel without Python? (The module docstring's rules.) */
static int request_forwardable(HotPath *self, frames_t *f) {
    int i = 0;
    while (i < f->n && !is_delim(&f->parts[i])) i++;
    if (i == f->n || f->n - i - 1 < 5 || self->sign < 0) return 0;
    zmq_msg_t *sig = &f->parts[i + 1], *header = &f->parts[i + 2], *content = &f->parts[i + 5];
    if (self->sign) {
        const unsigned char *parts[4];
        size_t sizes[4];
        char hex[64];
        for (int j = 0; j < 4; j++) parts[j] = z_msg_data(&f->parts[i + 2 + j]), sizes[j] = z_msg_size(&f->parts[i + 2 + j]);
        hmac_hex(&self->key, parts, sizes, 4, hex);
        if (z_msg_size(sig) != 64) return 0;
        const unsigned char *given = z_msg_data(sig);
        unsigned char diff = 0;
        for (int j = 0; j < 64; j++) diff |= (unsigned char)(given[j] ^ (unsigned char)hex[j]);
        if (diff) return 0;
    }
    const char *t;
    size_t tlen;
    if (!header_msg_type(z_msg_data(header), z_msg_size(header), &t, &tlen)) return 0;
    int allowed = 0;
    for (int j = 0; j < self->ntypes && !allowed; j++)
        allowed = self->type_lens[j] == tlen && memcmp(self->types[j], t, tlen) == 0;
    if (!allowed) return 0;
    if (tlen == 15 && memcmp(t, "execute_request", 15) == 0) {
        const char *c = z_msg_data(content);
        size_t cn = z_msg_size(content);
        if (contains(c, cn, "%gpu", 4) || contains(c, cn, "\\u", 2)) return 0;
    }
    return 1;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int HotPath_init(HotPath *self, PyObject *args, PyObject *kw) {
    self->epfd = -1;
    self->sign = -1;
    atomic_store(&self->fast, 0);
    return 0;
}

/* configure(epfd, watched: [(fd, role)], client_shell, client_control, client_control_fd, remote_shell,
   remote_control, inner, key: bytes | None, types: [bytes]): the pump calls it whenever its sockets change.
   Socket arguments are pyzmq's ``Socket.underlying`` addresses (0: none). key None: requests are never
   forwarded here (a signature scheme other than hmac-sha256). */
static PyObject *HotPath_configure(HotPath *self, PyObject *args) {
    int epfd, ccfd;
    PyObject *watched, *key, *types;
    unsigned long long cs, cc, rs, rc, inner;
    if (!PyArg_ParseTuple(args, "iOKKiKKKOO", &epfd, &watched, &cs, &cc, &ccfd, &rs, &rc, &inner, &key, &types))
        return NULL;
    PyObject *seq = PySequence_Fast(watched, "watched must be a sequence");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAX_WATCHED) {
        Py_DECREF(seq);
        return PyErr_Format(PyExc_ValueError, "at most %d watched sockets", MAX_WATCHED);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "ii", &self->fds[i], &self->roles[i])) {
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);
    self->nwatched = (int)n;
    self->epfd = epfd;
    self->sock[ROLE_CLIENT_SHELL] = (void *)(uintptr_t)cs;
    self->sock[ROLE_REMOTE_SHELL] = (void *)(uintptr_t)rs;
    self->sock[ROLE_REMOTE_CONTROL] = (void *)(uintptr_t)rc;
    self->client_control = (void *)(uintptr_t)cc;
    self->client_control_fd = ccfd;
    self->inner = (void *)(uintptr_t)inner;
    if (key == Py_None) {
        self->sign = -1;
    } else {
        char *buf;
        Py_ssize_t len;
        if (PyBytes_AsStringAndSize(key, &buf, &len) < 0) return NULL;
        self->sign = len > 0;
        if (len > 0) hmac_key_init(&self->key, (const unsigned char *)buf, (size_t)len);
    }
    seq = PySequence_Fast(types, "types must be a sequence");
    if (seq == NULL) return NULL;
    n = PySequence_Fast_GET_SIZE(seq);
    self->ntypes = 0;
    for (Py_ssize_t i = 0; i < n && i < MAX_TYPES; i++) {
        char *buf;
        Py_ssize_t len;
        if (PyBytes_AsStringAndSize(PySequence_Fast_GET_ITEM(seq, i), &buf, &len) < 0) {
            Py_DECREF(seq);
            return NULL;
        }
        if (len >= MAX_TYPE_LEN) continue;
        memcpy(self->types[self->ntypes], buf, (size_t)len);
        self->type_lens[self->ntypes++] = (size_t)len;
    }
    Py_DECREF(seq);
    Py_RETURN_NONE;
}

static PyObject *HotPath_set_fast(HotPath *self, PyObject *arg) {
    int v = PyObject_IsTrue(arg);
    if (v < 0) return NULL;
    atomic_store(&self->fast, v);
    Py_RETURN_NONE;
}

static int role_of(HotPath *self, int fd) {
    for (int i = 0; i < self->nwatched; i++)
        if (self->fds[i] == fd) return self->roles[i];
    return ROLE_PYTHON;
}

/* serve(timeout_ms, shell_ok, bookkeeping_ms) -> (ready_fds, handed_back, done)
   ready_fds: descriptors of sockets Python serves that fired (Python looks at those sockets next);
   handed_back: None, or (role, frames) of the one message this could not relay (the last thing received:
       Python handles it before anything else);
   done: [(role, frames)] relayed here, in order, for the pump's bookkeeping (copies of the frames). */
static PyObject *HotPath_serve(HotPath *self, PyObject *args) {
    int timeout_ms, shell_ok, bookkeeping_ms;
    if (!PyArg_ParseTuple(args, "ipi", &timeout_ms, &shell_ok, &bookkeeping_ms)) return NULL;
    if (!z_loaded || self->epfd < 0) return PyErr_Format(PyExc_RuntimeError, "_hotpath is not configured");
    frames_t f = {NULL, 0, 0};
    PyObject *ready = PyList_New(0), *done = PyList_New(0), *back = NULL;
    if (ready == NULL || done == NULL) goto fail;
    double deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms, due = -1;
    int check = (1 << ROLE_CLIENT_SHELL) | (1 << ROLE_REMOTE_SHELL) | (1 << ROLE_REMOTE_CONTROL);
    int control_touched = 0;
    for (;;) {
        for (int role = ROLE_CLIENT_SHELL; role <= ROLE_REMOTE_CONTROL && back == NULL; role++) {
            void *sock = self->sock[role];
            if (!(check & (1 << role))) continue;
            check &= ~(1 << role);
            if (sock == NULL) continue;
            for (;;) {
                int r = back == NULL ? sock_readable(sock) : 0;
                if (r < 0) goto fail_errno;
                if (r == 0) break;
                if (recv_message(sock, &f) < 0) {
                    if (errno == EAGAIN) break;
                    goto fail_errno;
                }
                void *to = NULL;
                if (role == ROLE_CLIENT_SHELL) {
                    int queued = sock_readable(self->inner); /* the loop's commands go first */
                    if (queued < 0) goto fail_errno;
                    if (shell_ok && atomic_load(&self->fast) && self->sock[ROLE_REMOTE_SHELL] && !queued &&
                        request_forwardable(self, &f))
                        to = self->sock[ROLE_REMOTE_SHELL];
                } else if (!is_delim(&f.parts[0])) { /* a reply to a client (the gateway's own have no identity) */
                    to = role == ROLE_REMOTE_SHELL ? self->sock[ROLE_CLIENT_SHELL] : self->client_control;
                }
                PyObject *copy = frames_as_list(&f);
                if (copy == NULL) goto fail;
                if (to == NULL || send_message(to, &f) < 0) {
                    back = Py_BuildValue("(iN)", role, copy);
                    frames_close(&f);
                    self->handed_back++;
                    if (back == NULL) goto fail;
                    break;
                }
                PyObject *item = Py_BuildValue("(iN)", role, copy);
                if (item == NULL || PyList_Append(done, item) < 0) {
                    Py_XDECREF(item);
                    goto fail;
                }
                Py_DECREF(item);
                if (role == ROLE_CLIENT_SHELL) {
                    self->forwarded_requests++;
                    check |= 1 << ROLE_REMOTE_SHELL; /* the send may have taken its wake-up */
                } else {
                    self->forwarded_replies++;
                    if (role == ROLE_REMOTE_SHELL) check |= 1 << ROLE_CLIENT_SHELL;
                    else control_touched = 1;
                }
                if (due < 0) due = now_ms() + bookkeeping_ms;
            }
        }
        if (control_touched) { /* a socket Python serves: a request its send's wake-up hid is Python's */
            control_touched = 0;
            int r = sock_readable(self->client_control);
            if (r < 0) goto fail_errno;
            if (r) {
                PyObject *fd = PyLong_FromLong(self->client_control_fd);
                if (fd == NULL || PyList_Append(ready, fd) < 0) {
                    Py_XDECREF(fd);
                    goto fail;
                }
                Py_DECREF(fd);
            }
        }
        if (back != NULL || PyList_GET_SIZE(ready) > 0) break;
        if (check) continue; /* a socket sent on: look at it before waiting */
        double t = now_ms(), until = deadline;
        if (due >= 0 && (until < 0 || due < until)) until = due;
        if (until >= 0 && t >= until) break;
        int wait = until < 0 ? -1 : (int)(until - t) + 1;
        struct epoll_event evs[16];
        int n, err;
        Py_BEGIN_ALLOW_THREADS;
        n = epoll_wait(self->epfd, evs, 16, wait);
        err = errno;
        Py_END_ALLOW_THREADS;
        if (n < 0) {
            if (err == EINTR) {
                if (PyErr_CheckSignals() < 0) goto fail;
                continue;
            }
            errno = err;
            PyErr_SetFromErrno(PyExc_OSError);
            goto fail;
        }
        for (int i = 0; i < n; i++) {
            int role = role_of(self, evs[i].data.fd);
            if (role == ROLE_PYTHON) {
                PyObject *fd = PyLong_FromLong(evs[i].data.fd);
                if (fd == NULL || PyList_Append(ready, fd) < 0) {
                    Py_XDECREF(fd);
                    goto fail;
                }
                Py_DECREF(fd);
            } else {
                check |= 1 << role;
            }
        }
        if (PyList_GET_SIZE(ready) > 0) break; /* the loop's commands go first; the rest waits in `check`'s
                                                   sockets, which the next call looks at before it waits */
    }
    PyMem_Free(f.parts);
    if (back == NULL) back = Py_NewRef(Py_None);
    return Py_BuildValue("(NNN)", ready, back, done);
fail_errno:
    PyErr_SetFromErrno(PyExc_OSError);
fail:
    frames_close(&f);
    PyMem_Free(f.parts);
    Py_XDECREF(ready);
    Py_XDECREF(done);
    Py_XDECREF(back);
    return NULL;
}

/* ------------------------------------------------------------------------------ the remote's output */
/* forward(client_xpub, remote_xsub, capture_pub, steer_pair): the remote kernel's iopub to the clients, and
   the clients' (un)subscriptions to the remote kernel with a copy on ``capture`` for the I/O thread, until
   ``steer`` says TERMINATE (forwarder.py). What libzmq's zmq_proxy_steerable did for the pump, without its
   zmq_poll around every message (a poll and a getpid per socket per turn: ~60 system calls per `pass` round
   trip) and without copying every output message to the capture socket (only subscriptions go there, which
   is all the I/O thread reads). Runs with the GIL released from start to end. */
/* One frame (waiting for it): 0, or -1 with errno and m closed. */
static int recv_part(zmq_msg_t *m, void *sock) {
    z_msg_init(m);
    if (z_msg_recv(m, sock, 0) < 0) {
        int err = z_errno();
        z_msg_close(m);
        errno = err;
        return -1;
    }
    return 0;
}

static int forward_one(void *from, void *to, void *copy_to) {
    zmq_msg_t m, c;
    int more;
    do {
        if (recv_part(&m, from) < 0) return -1;
        more = z_msg_more(&m);
        if (copy_to != NULL) {
            z_msg_init(&c);
            if (z_msg_copy(&c, &m) < 0 || z_msg_send(&c, copy_to, (more ? Z_SNDMORE : 0) | Z_DONTWAIT) < 0)
                z_msg_close(&c); /* a capture PUB drops what it cannot take; never block on it */
        }
        if (z_msg_send(&m, to, more ? Z_SNDMORE : 0) < 0) {
            int err = z_errno();
            z_msg_close(&m);
            errno = err;
            return -1;
        }
    } while (more);
    return 0;
}

/* 1: steer said TERMINATE (the message read); 0: nothing for us; -1 with errno. */
static int steer_says_stop(void *steer) {
    int r = sock_readable(steer);
    if (r <= 0) return r;
    zmq_msg_t m;
    int stop = 0, more;
    do {
        if (recv_part(&m, steer) < 0) return -1;
        more = z_msg_more(&m);
        stop |= z_msg_size(&m) == 9 && memcmp(z_msg_data(&m), "TERMINATE", 9) == 0;
        z_msg_close(&m);
    } while (more);
    return stop;
}

static int forward_loop(void *client, void *remote, void *capture, void *steer) {
    void *socks[3] = {steer, remote, client};
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) return -1;
    for (int i = 0; i < 3; i++) {
        int fd;
        size_t len = sizeof fd;
        struct epoll_event ev = {.events = EPOLLIN, .data = {.fd = i}};
        if (z_getsockopt(socks[i], Z_FD, &fd, &len) != 0) {
            errno = z_errno();
            goto fail;
        }
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) goto fail;
    }
    for (;;) {
        int moved;
        do { /* until a turn finds nothing: a send may take the wake-up of a socket that has more */
            moved = 0;
            int r = steer_says_stop(steer);
            if (r < 0) goto fail;
            if (r > 0) {
                close(epfd);
                return 0;
            }
            for (int k = 0; k < 64; k++) { /* the output, a bounded batch, then the rest gets its turn */
                r = sock_readable(remote);
                if (r < 0) goto fail;
                if (r == 0) break;
                if (forward_one(remote, client, NULL) < 0) goto fail;
                moved = 1;
            }
            for (;;) {
                r = sock_readable(client);
                if (r < 0) goto fail;
                if (r == 0) break;
                if (forward_one(client, remote, capture) < 0) goto fail;
                moved = 1;
            }
        } while (moved);
        struct epoll_event evs[3];
        if (epoll_wait(epfd, evs, 3, -1) < 0 && errno != EINTR) goto fail;
    }
fail:;
    int err = errno;
    close(epfd);
    errno = err;
    return -1;
}

static PyObject *py_forward(PyObject *mod, PyObject *args) {
    unsigned long long client, remote, capture, steer;
    if (!PyArg_ParseTuple(args, "KKKK", &client, &remote, &capture, &steer)) return NULL;
    if (!z_loaded) return PyErr_Format(PyExc_RuntimeError, "_hotpath is not loaded");
    int r, err;
    Py_BEGIN_ALLOW_THREADS;
    r = forward_loop((void *)(uintptr_t)client, (void *)(uintptr_t)remote, (void *)(uintptr_t)capture,
                     (void *)(uintptr_t)steer);
    err = errno;
    Py_END_ALLOW_THREADS;
    if (r < 0) {
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

static PyObject *HotPath_stats(HotPath *self, PyObject *unused) {
    return Py_BuildValue("{sLsLsL}", "forwarded_requests", self->forwarded_requests, "forwarded_replies",
                         self->forwarded_replies, "handed_back", self->handed_back);
}

static PyMethodDef HotPath_methods[] = {
    {"configure", (PyCFunction)HotPath_configure, METH_VARARGS, "Set the sockets, the key and the types."},
    {"set_fast", (PyCFunction)HotPath_set_fast, METH_O, "The loop's Pump.fast (any thread)."},
    {"serve", (PyCFunction)HotPath_serve, METH_VARARGS, "Wait and relay; see the module source."},
    {"stats", (PyCFunction)HotPath_stats, METH_NOARGS, "Counters: relayed requests, replies, handed back."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject HotPathType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mlp_kernel.gateway._hotpath.HotPath",
    .tp_basicsize = sizeof(HotPath),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)HotPath_init,
    .tp_methods = HotPath_methods,
    .tp_doc = "The pump's wait and hot path in C (one per pump, used only in its thread).",
};

static PyMethodDef module_methods[] = {
    {"load", load, METH_VARARGS, "Resolve libzmq's functions in the already loaded library at this path."},
    {"hmac_sha256_hex", py_hmac_sha256_hex, METH_VARARGS, "HMAC-SHA256 as hex bytes (for the tests)."},
    {"msg_type", py_msg_type, METH_VARARGS, "A header's msg_type as this module reads it, or None."},
    {"forward", py_forward, METH_VARARGS, "The remote's iopub to the clients until TERMINATE (forwarder.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, .m_name = "_hotpath", .m_size = -1, .m_methods = module_methods};

PyMODINIT_FUNC PyInit__hotpath(void) {
    if (PyType_Ready(&HotPathType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) return NULL;
    Py_INCREF(&HotPathType);
    if (PyModule_AddObject(m, "HotPath", (PyObject *)&HotPathType) < 0) {
        Py_DECREF(&HotPathType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
