/* The hot path's quiet test in C: `HotPath.on_parsed`'s per-frame loop over a burst.

   Why C: a quiet frame is a few dict lookups, one float conversion and a handful of
   comparisons, and in CPython each of those costs more as bytecode than the JSON parse of
   the frame does; in C the whole test is cheaper than the parse.

   The contract is one-sided: `run` calls a frame quiet (and makes the quiet stores) only
   when the Python loop (`HotPath._span`, the reference) would call it quiet and make the
   same stores. At the first frame where it is not sure -- not quiet, or anything it does
   not handle (another type, a topic not cached yet, a text it cannot read the way float()
   does, a symbol whose edges may have changed, an attribute that is not a plain slot) --
   it returns that frame's index, and Python judges that frame by the reference loop
   (exactly, through the sink if it is not quiet) before calling `run` again from the next
   index: so a level the sink adds is seen by the very next frame.

   Attributes are read the way `object.__getattribute__` reads a `__slots__` member (the
   member descriptor's offset), looked up once per type and again whenever the type
   changes (its version tag), and only for types whose attribute access is the generic
   one. Anything else is left to Python.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <stdint.h>
#include <string.h>
#include "structmember.h"

#define MAX_NAMES 5
#define WAYS 4

typedef struct {
    PyTypeObject *type; /* a strong reference, or NULL */
    unsigned int tag;   /* the type's version tag when filled; 0: fill again */
    int ok;             /* every name is a plain object slot of this type */
    Py_ssize_t off[MAX_NAMES];
} Layout;

typedef struct {
    const char *spelled[MAX_NAMES + 1]; /* NULL-terminated */
    int stores;                         /* how many of the last names are written to (a
                                           generic setattr, no read-only member) */
    int n;
    int next;
    PyObject *names[MAX_NAMES];
    Layout ways[WAYS];
} Role;

/* The only frame and data types judged here (`configure`): LeanFrame and LeanData. */
static PyTypeObject *frame_type = NULL, *data_type = NULL;

static Role FRAME = {.spelled = {"topic", "data", NULL}};
static Role DATA = {.spelled = {"price", NULL}};
static Role REGION = {.spelled = {"flo", "fhi", "limit", "pivot", "text", NULL}, .stores = 1};
static Role EDGES = {.spelled = {"flo", "fhi", "count", NULL}};
static Role LIVE = {.spelled = {"text", "trade", NULL}, .stores = 2}; /* LivePrices' LiveSlot */

static void
fill(Role *role, Layout *l, PyTypeObject *type)
{
    if (l->type != type) {
        Py_INCREF(type);
        Py_XSETREF(l->type, type);
    }
    l->ok = 0;
    l->tag = 0;
    if (type->tp_getattro != PyObject_GenericGetAttr) {
        goto done;
    }
    if (role->stores && type->tp_setattro != PyObject_GenericSetAttr) {
        goto done;
    }
    for (int i = 0; i < role->n; i++) {
        /* What the generic getattr finds first: a data descriptor on the type wins over
           an instance dict, and a member descriptor is one. */
        PyObject *d = _PyType_Lookup(type, role->names[i]);
        if (d == NULL || Py_TYPE(d) != &PyMemberDescr_Type) {
            goto done;
        }
        PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
        if (m->type != T_OBJECT_EX && m->type != T_OBJECT) {
            goto done;
        }
        if (i >= role->n - role->stores && (m->flags & READONLY)) {
            goto done;
        }
        l->off[i] = m->offset;
    }
    l->ok = 1;
done:
    if (type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) {
        l->tag = type->tp_version_tag;
    }
}

/* The type's layout for `role`, or NULL when its attributes are not plain slots. */
static inline Layout *
layout_of(Role *role, PyTypeObject *type)
{
    for (int i = 0; i < WAYS; i++) {
        Layout *l = &role->ways[i];
        if (l->type == type) {
            if (l->tag == 0 || !(type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) ||
                type->tp_version_tag != l->tag) {
                fill(role, l, type);
            }
            return l->ok ? l : NULL;
        }
    }
    Layout *l = &role->ways[role->next];
    role->next = (role->next + 1) % WAYS;
    fill(role, l, type);
    return l->ok ? l : NULL;
}

/* Clinger's fast path: a text of at most 19 digits and one point is m / 10^k; when
   m <= 2^53 and k <= 22 both are exact doubles and one IEEE division rounds the quotient
   correctly, so the result is the correctly rounded value, which is what float() (David
   Gay's strtod) returns. Only where doubles are evaluated as doubles (no x87 excess
   precision); anything else goes to PyOS_string_to_double. */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define FAST_PATH 1
static const double POW10[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};
#else
#define FAST_PATH 0
#endif

/* float(text) of an ASCII text, as float() computes it; 0 when unsure (Python reads it). */
static inline int
text_to_double(const char *s, Py_ssize_t len, double *out)
{
#if FAST_PATH
    unsigned long long m = 0;
    int k = -1, digits = 0;
    Py_ssize_t j = 0;
    for (; j < len; j++) {
        char c = s[j];
        if (c >= '0' && c <= '9') {
            if (++digits > 19) {
                break;
            }
            m = m * 10 + (unsigned long long)(c - '0');
            if (k >= 0) {
                k++;
            }
        }
        else if (c == '.' && k < 0) {
            k = 0;
        }
        else {
            break;
        }
    }
    if (j == len && digits > 0 && m <= (1ULL << 53) && k <= 22) {
        *out = (double)m / POW10[k < 0 ? 0 : k];
        return 1;
    }
#endif
    char *end = NULL;
    double value = PyOS_string_to_double(s, &end, NULL);
    if (end != s + len) {
        PyErr_Clear();
        return 0;
    }
    *out = value;
    return 1;
}

#define SLOT(obj, layout, i) (*(PyObject **)((char *)(obj) + (layout)->off[i]))

/* A float slot's value, or 0 when it is not exactly a float. */
static inline int
float_of(PyObject *v, double *out)
{
    if (v == NULL || !PyFloat_CheckExact(v)) {
        return 0;
    }
    *out = PyFloat_AS_DOUBLE(v);
    return 1;
}

/* 1: `symbol` is held, 0: not, -1: unsure (Python decides). */
static inline int
is_held(PyObject *held, PyObject *symbol)
{
    if (PyFrozenSet_CheckExact(held) || PySet_CheckExact(held)) {
        if (PySet_GET_SIZE(held) == 0) {
            return 0;
        }
        int found = PySet_Contains(held, symbol);
        if (found < 0) {
            PyErr_Clear();
            return -1;
        }
        return found;
    }
    return -1;
}

/* A slot's new value (a reference the caller gives up) in place of its old one, as a
   member descriptor's set does. */
static inline void
store(PyObject **slot, PyObject *value)
{
    PyObject *old = *slot;
    *slot = value;
    Py_XDECREF(old);
}

/* What one burst's judgment reads and writes, as `run` and `scan` are given them. */
typedef struct {
    PyObject *cache, *held, *edges_map, *no_levels, *entry_value;
} Burst;

/* Judge one frame by its topic and price text (`s`, `len`; `text` its str, or NULL to make
   one only if the frame is quiet), as `HotPath._span` does. 1: quiet, the stores made;
   0: not quiet or unsure (Python judges it); -1: an error is set. */
static int
judge(Burst *b, PyObject *topic, const char *s, Py_ssize_t len, PyObject *text)
{
    /* The text tests first (they need no float): at least one character, the first "0"
       or above (so no sign, point or space), no minus sign (an exponent). */
    if (len == 0 || s[0] < '0' || memchr(s, '-', (size_t)len) != NULL) {
        return 0;
    }
    PyObject *entry = PyDict_GetItemWithError(b->cache, topic);
    if (entry == NULL) {
        return PyErr_Occurred() ? -1 : 0; /* not cached yet: Python looks the topic up */
    }
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 4) {
        return 0;
    }
    PyObject *symbol = PyTuple_GET_ITEM(entry, 0);
    PyObject *region = PyTuple_GET_ITEM(entry, 1);
    PyObject *edges = PyTuple_GET_ITEM(entry, 2);
    PyObject *live = PyTuple_GET_ITEM(entry, 3);
    if (!PyUnicode_CheckExact(symbol)) {
        return 0; /* its hash or equality could be Python code */
    }
    /* float(text) for an ASCII text with no space and no underscore is
       PyOS_string_to_double on the whole text; anything it does not read to the end,
       Python reads. */
    double price;
    if (!text_to_double(s, len, &price)) {
        return 0;
    }
    Layout *rl = layout_of(&REGION, Py_TYPE(region));
    if (rl == NULL) {
        return 0;
    }
    double rflo, rfhi, pivot;
    if (!float_of(SLOT(region, rl, 0), &rflo) || !float_of(SLOT(region, rl, 1), &rfhi) ||
        !(rflo < price && price < rfhi)) {
        return 0;
    }
    PyObject *limit_obj = SLOT(region, rl, 2);
    if (limit_obj == NULL || !PyLong_CheckExact(limit_obj) ||
        !float_of(SLOT(region, rl, 3), &pivot)) {
        return 0;
    }
    int overflow = 0;
    long long limit = PyLong_AsLongLongAndOverflow(limit_obj, &overflow);
    if (overflow || (limit == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    /* len(text) <= limit + (price > pivot), without overflow */
    if ((long long)len - (price > pivot) > limit) {
        return 0;
    }
    Layout *el = layout_of(&EDGES, Py_TYPE(edges));
    if (el == NULL) {
        return 0;
    }
    PyObject *count = SLOT(edges, el, 2);
    if (count == NULL || !PyLong_CheckExact(count)) {
        return 0;
    }
    int levels = PyObject_IsTrue(count);
    if (levels < 0) {
        PyErr_Clear();
        return 0;
    }
    if (!levels) {
        /* No level (or no longer the book's): quiet by these edges only while they are
           still what the book maps the symbol to; else Python caches the new ones. */
        PyObject *now = PyDict_GetItemWithError(b->edges_map, symbol);
        if (now == NULL) {
            if (PyErr_Occurred()) {
                return -1;
            }
            now = b->no_levels;
        }
        if (now != edges) {
            return 0;
        }
    }
    double eflo, efhi;
    if (!float_of(SLOT(edges, el, 0), &eflo) || !float_of(SLOT(edges, el, 1), &efhi) ||
        !(eflo < price && price < efhi)) {
        return 0;
    }
    if (is_held(b->held, symbol) != 0) {
        return 0;
    }
    Layout *ll = layout_of(&LIVE, Py_TYPE(live));
    if (ll == NULL) {
        return 0;
    }
    /* Quiet: the filter's band reference and the live price, as the Python loop. No
       Python code runs from here on (the old values freed are str and tuples), so the
       slots written are the ones looked up. */
    if (text == NULL) {
        text = PyUnicode_New(len, 127);
        if (text == NULL) {
            return -1;
        }
        memcpy(PyUnicode_DATA(text), s, (size_t)len);
    }
    else {
        Py_INCREF(text);
    }
    Py_INCREF(entry);
    Py_INCREF(text);
    store(&SLOT(region, rl, 4), text);
    Py_INCREF(text);
    store(&SLOT(live, ll, 0), text);
    Py_INCREF(b->entry_value);
    store(&SLOT(live, ll, 1), b->entry_value);
    Py_DECREF(text);
    Py_DECREF(entry);
    return 1;
}

/* The burst's shared arguments (args[2:7]), checked; 0 when Python must judge instead. */
static int
burst_of(Burst *b, PyObject *const *args)
{
    b->cache = args[2];
    b->held = args[3];
    b->edges_map = args[4];
    b->no_levels = args[5];
    b->entry_value = args[6];
    return PyDict_CheckExact(b->cache) && PyDict_CheckExact(b->edges_map);
}

PyDoc_STRVAR(run_doc,
"run(frames, start, cache, held, edges, no_levels, entry) -> int\n\n"
"Judge frames[start:] as HotPath's Python loop does, making the quiet stores\n"
"(region.text = slot.text = text, slot.trade = entry) for each quiet frame, up to the\n"
"first frame it does not call quiet: that frame's index (len(frames) if none).");

static PyObject *
run(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "run() takes 7 arguments");
        return NULL;
    }
    PyObject *frames = args[0];
    Py_ssize_t i = PyLong_AsSsize_t(args[1]);
    if (i == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Burst b;
    if (!PyList_CheckExact(frames) || !burst_of(&b, args) || i < 0) {
        return PyLong_FromSsize_t(i < 0 ? 0 : i); /* nothing judged here: Python does it */
    }
    /* Nothing below runs Python code (str keys, exact sets, ints and floats only), so
       the types cannot change during the loop: their layouts are looked up once. */
    Layout *fl = frame_type == NULL ? NULL : layout_of(&FRAME, frame_type);
    Layout *dl = data_type == NULL ? NULL : layout_of(&DATA, data_type);
    if (fl == NULL || dl == NULL) {
        return PyLong_FromSsize_t(i);
    }
    for (; i < PyList_GET_SIZE(frames); i++) {
        PyObject *frame = PyList_GET_ITEM(frames, i);
        if (Py_TYPE(frame) != frame_type) {
            break; /* a Decoded frame, or anything else: Python judges it */
        }
        PyObject *topic = SLOT(frame, fl, 0), *data = SLOT(frame, fl, 1);
        if (topic == NULL || data == NULL || !PyUnicode_CheckExact(topic)) {
            break;
        }
        if (Py_TYPE(data) != data_type) {
            break;
        }
        PyObject *text = SLOT(data, dl, 0);
        if (text == NULL || !PyUnicode_CheckExact(text) || !PyUnicode_IS_COMPACT_ASCII(text)) {
            break;
        }
        int quiet = judge(&b, topic, (const char *)PyUnicode_DATA(text),
                          PyUnicode_GET_LENGTH(text), text);
        if (quiet < 0) {
            return NULL;
        }
        if (!quiet) {
            break;
        }
    }
    return PyLong_FromSsize_t(i);
}

/* ---- Raw frames: a strict reader of the canonical ticker message ----

   `scan` reads a raw frame itself, without building any Python object, but only a frame
   whose every byte it understands the way msgspec's `LeanFrame` decoder does: one JSON
   object, no whitespace before or after it, every string plain printable ASCII (no
   backslash, so no escape: what it reads is what the decoder decodes), `type` the string
   "message", `data` an object whose `price` is a string and whose `time`/`Time`, if
   present, are plain non-negative integers of at most 18 digits, `topic` and `subject`
   strings, no key of these read twice, any other member a JSON value (numbers without an
   exponent and of at most 20 digits, nesting at most 8 deep). Anything else -- valid JSON
   or not -- is left to Python, which decodes it exactly (or counts it malformed). So what
   `scan` reads is what the decoder reads, and it never accepts a frame the decoder
   refuses: `read_frame` exposes the reader to the tests that prove it. The documented
   shape itself is tried first as one run of literals and values (`read_canonical`), which
   applies the same tests to each value; any other frame is walked member by member. */

typedef struct {
    const char *topic, *price;
    Py_ssize_t topic_len, price_len;
    long long time, Time;
} RawFields;

#define MAX_DEPTH 8

static inline int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static inline const char *
skip_ws(const char *p, const char *end)
{
    if (p < end && (unsigned char)*p > ' ') {
        return p; /* the usual case: no whitespace between a frame's tokens */
    }
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

/* A plain string at p (p at its opening quote): its content in [*s, *s + *n), and the
   pointer past the closing quote; NULL for an escape, a control or non-ASCII byte, or no
   closing quote. */
static inline const char *
plain_string(const char *p, const char *end, const char **s, Py_ssize_t *n)
{
    const char *b = ++p;
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Eight bytes at a time to the first byte that may end the plain run (a quote, a
       backslash, a control or non-ASCII byte): the lowest byte these tests flag is always
       one of them (a borrow only runs upwards from a flagged byte), and the loop below
       judges it. */
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
        uint64_t flagged = (w | ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) |
                            ((bs - ones) & ~bs)) & highs;
        if (flagged) {
            p += __builtin_ctzll(flagged) >> 3;
            break;
        }
        p += 8;
    }
#endif
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *s = b;
            *n = p - b;
            return p + 1;
        }
        if (c == '\\' || c < 0x20 || c >= 0x80) {
            return NULL;
        }
    }
    return NULL;
}

/* A JSON number with no exponent and at most 20 digits, or NULL. */
static const char *
skip_number(const char *p, const char *end)
{
    int digits = 0;
    if (p < end && *p == '-') {
        p++;
    }
    if (p >= end) {
        return NULL;
    }
    if (*p == '0') {
        p++;
        digits++;
    }
    else if (*p >= '1' && *p <= '9') {
        for (; p < end && is_digit(*p); p++) {
            digits++;
        }
    }
    else {
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p)) {
            return NULL;
        }
        for (; p < end && is_digit(*p); p++) {
            digits++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        return NULL;
    }
    return digits <= 20 ? p : NULL;
}

static const char *skip_value(const char *p, const char *end, int depth);

/* An object's or array's members (p just past its opening bracket), or NULL. */
static const char *
skip_container(const char *p, const char *end, int depth, char close)
{
    if (depth > MAX_DEPTH) {
        return NULL;
    }
    p = skip_ws(p, end);
    if (p < end && *p == close) {
        return p + 1;
    }
    for (;;) {
        if (close == '}') {
            const char *s;
            Py_ssize_t n;
            if (p >= end || *p != '"' || (p = plain_string(p, end, &s, &n)) == NULL) {
                return NULL;
            }
            p = skip_ws(p, end);
            if (p >= end || *p != ':') {
                return NULL;
            }
            p = skip_ws(p + 1, end);
        }
        if ((p = skip_value(p, end, depth)) == NULL) {
            return NULL;
        }
        p = skip_ws(p, end);
        if (p >= end) {
            return NULL;
        }
        if (*p == close) {
            return p + 1;
        }
        if (*p != ',') {
            return NULL;
        }
        p = skip_ws(p + 1, end);
    }
}

static const char *
skip_value(const char *p, const char *end, int depth)
{
    if (p >= end) {
        return NULL;
    }
    const char *s;
    Py_ssize_t n;
    switch (*p) {
    case '"':
        return plain_string(p, end, &s, &n);
    case '{':
        return skip_container(p + 1, end, depth + 1, '}');
    case '[':
        return skip_container(p + 1, end, depth + 1, ']');
    case 't':
        return end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        return end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        return end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
        return skip_number(p, end);
    }
}

/* A plain non-negative integer of at most 18 digits (no leading zero but "0"), or NULL. */
static inline const char *
read_int(const char *p, const char *end, long long *out)
{
    const char *b = p;
    long long v = 0;
    for (; p < end && is_digit(*p); p++) {
        v = v * 10 + (*p - '0');
    }
    Py_ssize_t n = p - b;
    if (n == 0 || n > 18 || (n > 1 && *b == '0')) {
        return NULL;
    }
    *out = v;
    return p;
}

static inline int
key_is(const char *s, Py_ssize_t n, const char *name, Py_ssize_t len)
{
    return n == len && memcmp(s, name, (size_t)len) == 0;
}

/* One member of the frame (`data` when in_data), p at its key; the next position (past
   the value), or NULL when the frame is not one `scan` reads. */
static const char *
member(const char *p, const char *end, RawFields *f, unsigned *seen, int in_data);

/* An object's members (p just past its '{'), each through `member`, or NULL. */
static const char *
members(const char *p, const char *end, RawFields *f, unsigned *seen, int in_data)
{
    p = skip_ws(p, end);
    if (p < end && *p == '}') {
        return p + 1;
    }
    for (;;) {
        if ((p = member(p, end, f, seen, in_data)) == NULL) {
            return NULL;
        }
        p = skip_ws(p, end);
        if (p >= end) {
            return NULL;
        }
        if (*p == '}') {
            return p + 1;
        }
        if (*p != ',') {
            return NULL;
        }
        p = skip_ws(p + 1, end);
    }
}

enum { F_TYPE = 1, F_TOPIC = 2, F_SUBJECT = 4, F_DATA = 8, F_PRICE = 16, F_TIME = 32, F_TIME_CAP = 64 };

static const char *
member(const char *p, const char *end, RawFields *f, unsigned *seen, int in_data)
{
    const char *k, *s;
    Py_ssize_t kn, n;
    if (p >= end || *p != '"' || (p = plain_string(p, end, &k, &kn)) == NULL) {
        return NULL;
    }
    p = skip_ws(p, end);
    if (p >= end || *p != ':') {
        return NULL;
    }
    p = skip_ws(p + 1, end);
    if (p >= end) {
        return NULL;
    }
    unsigned field = 0;
    if (in_data) {
        field = key_is(k, kn, "price", 5) ? F_PRICE
              : key_is(k, kn, "time", 4)  ? F_TIME
              : key_is(k, kn, "Time", 4)  ? F_TIME_CAP
                                          : 0;
    }
    else {
        field = key_is(k, kn, "type", 4)      ? F_TYPE
              : key_is(k, kn, "topic", 5)     ? F_TOPIC
              : key_is(k, kn, "subject", 7)   ? F_SUBJECT
              : key_is(k, kn, "data", 4)      ? F_DATA
                                              : 0;
    }
    if (field == 0) {
        return skip_value(p, end, in_data ? 2 : 1);
    }
    if (*seen & field) {
        return NULL; /* read twice: the decoder keeps the last, this reader does not try */
    }
    *seen |= field;
    switch (field) {
    case F_TYPE:
        if (*p != '"' || (p = plain_string(p, end, &s, &n)) == NULL ||
            !key_is(s, n, "message", 7)) {
            return NULL;
        }
        return p;
    case F_TOPIC:
        if (*p != '"') {
            return NULL;
        }
        return plain_string(p, end, &f->topic, &f->topic_len);
    case F_SUBJECT:
        if (*p != '"') {
            return NULL;
        }
        return plain_string(p, end, &s, &n);
    case F_DATA:
        if (*p != '{') {
            return NULL;
        }
        return members(p + 1, end, f, seen, 1);
    case F_PRICE:
        if (*p != '"') {
            return NULL;
        }
        return plain_string(p, end, &f->price, &f->price_len);
    case F_TIME:
        return read_int(p, end, &f->time);
    default:
        return read_int(p, end, &f->Time);
    }
}

/* A literal of the canonical frame at p: the pointer past it, or NULL. */
#define LITERAL(p, end, lit)                                                              \
    ((end) - (p) >= (Py_ssize_t)sizeof(lit) - 1 && memcmp((p), (lit), sizeof(lit) - 1) == 0 \
         ? (p) + sizeof(lit) - 1                                                           \
         : NULL)

/* The documented ticker frame (kucoin-protocol.md, what KuCoin and the simulator send),
   byte for byte outside its values:
     {"type":"message","topic":T,"subject":S,"data":{"sequence":Q,"price":P,"size":Z,
      "bestAsk":A,"bestAskSize":B,"bestBid":C,"bestBidSize":D,"time":N}}
   with no whitespace, every value but N a plain string, N a plain integer. Read as one
   run of literals and values, it costs a fraction of the member-by-member walk: no key is
   scanned or classified, and no key can occur twice. 1 when the frame is exactly that
   (its fields in `f`), else 0 and the general reader decides. What it accepts, the general
   reader accepts with the same fields (the same tests of each value). */
static int
read_canonical(const char *p, const char *end, RawFields *f)
{
    static const char *const between[] = {
        "\",\"subject\":\"", "\",\"data\":{\"sequence\":\"", "\",\"price\":\"", "\",\"size\":\"",
        "\",\"bestAsk\":\"", "\",\"bestAskSize\":\"", "\",\"bestBid\":\"", "\",\"bestBidSize\":\"",
    };
    static const Py_ssize_t lengths[] = {13, 22, 11, 10, 13, 17, 13, 17};
    const char *s;
    Py_ssize_t n;
    p = LITERAL(p, end, "{\"type\":\"message\",\"topic\":");
    if (p == NULL || p >= end || *p != '"' ||
        (p = plain_string(p, end, &f->topic, &f->topic_len)) == NULL) {
        return 0;
    }
    for (int i = 0; i < 8; i++) {
        /* p is just past a value's closing quote: step back onto it, as each literal
           starts with it */
        p--;
        if (end - p < lengths[i] || memcmp(p, between[i], (size_t)lengths[i]) != 0) {
            return 0;
        }
        p += lengths[i] - 1; /* onto the next value's opening quote */
        if ((p = plain_string(p, end, &s, &n)) == NULL) {
            return 0;
        }
        if (i == 2) {
            f->price = s;
            f->price_len = n;
        }
    }
    p = LITERAL(p, end, ",\"time\":");
    if (p == NULL || (p = read_int(p, end, &f->time)) == NULL) {
        return 0;
    }
    return end - p == 2 && p[0] == '}' && p[1] == '}';
}

/* The frame's topic, price text and times, when it is a frame `scan` reads; else 0. */
static int
read_fields(const char *p, Py_ssize_t len, RawFields *f)
{
    const char *end = p + len;
    unsigned seen = 0;
    f->time = f->Time = 0;
    if (len == 0 || *p != '{') {
        return 0;
    }
    if (read_canonical(p, end, f)) {
        return 1;
    }
    f->time = f->Time = 0;
    p = members(p + 1, end, f, &seen, 0);
    return p == end && (seen & (F_TYPE | F_TOPIC | F_DATA | F_PRICE)) == (F_TYPE | F_TOPIC | F_DATA | F_PRICE);
}

/* The topic of a raw frame as a str, from a small table of the topics seen (by their
   bytes): the same str object each time, so its hash is computed once and a dict lookup
   by it costs no string building, hashing or freeing per frame. A slot holds the last
   topic that hashed to it; a new reference, or NULL with an error set. */
#define TOPIC_SLOTS 4096
#define TOPIC_MAX 64

typedef struct {
    PyObject *str;
    Py_ssize_t len;
    char bytes[TOPIC_MAX];
} TopicSlot;

static TopicSlot topics[TOPIC_SLOTS];

static inline PyObject *
topic_str(const char *s, Py_ssize_t len)
{
    TopicSlot *slot = NULL;
    if (len <= TOPIC_MAX) {
        /* FNV-1a over eight bytes at a time (then the tail byte by byte), folded: only a
           slot index, so any well-mixed hash of the bytes will do. */
        uint64_t h = 1469598103934665603ULL;
        Py_ssize_t i = 0;
        for (; i + 8 <= len; i += 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            h = (h ^ w) * 1099511628211ULL;
        }
        for (; i < len; i++) {
            h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
        }
        h ^= h >> 29;
        slot = &topics[h & (TOPIC_SLOTS - 1)];
        if (slot->str != NULL && slot->len == len && memcmp(slot->bytes, s, (size_t)len) == 0) {
            Py_INCREF(slot->str);
            return slot->str;
        }
    }
    PyObject *str = PyUnicode_New(len, 127);
    if (str == NULL) {
        return NULL;
    }
    memcpy(PyUnicode_DATA(str), s, (size_t)len);
    if (slot != NULL) {
        Py_INCREF(str);
        Py_XSETREF(slot->str, str);
        slot->len = len;
        memcpy(slot->bytes, s, (size_t)len);
    }
    return str;
}

/* The bytes of a raw frame (bytes, or a compact ASCII str); 0 for anything else. */
static inline int
raw_bytes(PyObject *raw, const char **p, Py_ssize_t *len)
{
    if (PyBytes_CheckExact(raw)) {
        *p = PyBytes_AS_STRING(raw);
        *len = PyBytes_GET_SIZE(raw);
        return 1;
    }
    if (PyUnicode_CheckExact(raw) && PyUnicode_IS_COMPACT_ASCII(raw)) {
        *p = (const char *)PyUnicode_DATA(raw);
        *len = PyUnicode_GET_LENGTH(raw);
        return 1;
    }
    return 0;
}

PyDoc_STRVAR(scan_doc,
"scan(frames, start, cache, held, edges, no_levels, entry, out) -> int\n\n"
"`run` over raw frames (bytes or str): each frame is read in C where it is a\n"
"canonical ticker message (see `read_frame`), judged and stored as `run` does, up to\n"
"the first frame it does not read or does not call quiet: that frame's index. When any\n"
"frame was quiet, out[0] is the last quiet frame's `time or Time`.");

static PyObject *
scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "scan() takes 8 arguments");
        return NULL;
    }
    PyObject *frames = args[0], *out = args[7];
    Py_ssize_t i = PyLong_AsSsize_t(args[1]);
    if (i == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Burst b;
    if (!PyList_CheckExact(frames) || !PyList_CheckExact(out) || PyList_GET_SIZE(out) < 1 ||
        !burst_of(&b, args) || i < 0) {
        return PyLong_FromSsize_t(i < 0 ? 0 : i);
    }
    long long last = -1;
    for (; i < PyList_GET_SIZE(frames); i++) {
        const char *p;
        Py_ssize_t len;
        RawFields f;
        if (!raw_bytes(PyList_GET_ITEM(frames, i), &p, &len) || !read_fields(p, len, &f)) {
            break;
        }
        PyObject *topic = topic_str(f.topic, f.topic_len);
        if (topic == NULL) {
            return NULL;
        }
        int quiet = judge(&b, topic, f.price, f.price_len, NULL);
        Py_DECREF(topic);
        if (quiet < 0) {
            return NULL;
        }
        if (!quiet) {
            break;
        }
        last = f.time ? f.time : f.Time;
    }
    if (last >= 0) {
        PyObject *ms = PyLong_FromLongLong(last);
        if (ms == NULL || PyList_SetItem(out, 0, ms) < 0) {
            return NULL;
        }
    }
    return PyLong_FromSsize_t(i);
}

PyDoc_STRVAR(read_frame_doc,
"read_frame(raw) -> (topic, price, time, Time) | None\n\n"
"What `scan` reads of a raw frame (bytes or str), or None where it leaves the frame to\n"
"Python. For tests: where it reads a frame, msgspec's LeanFrame decoder must read the\n"
"same.");

static PyObject *
read_frame(PyObject *module, PyObject *raw)
{
    const char *p;
    Py_ssize_t len;
    RawFields f;
    if (!raw_bytes(raw, &p, &len) || !read_fields(p, len, &f)) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(s#s#LL)", f.topic, f.topic_len, f.price, f.price_len, f.time, f.Time);
}

PyDoc_STRVAR(to_float_doc,
"to_float(text) -> float | None\n\n"
"What `run` reads a price text as: float(text), or None where it leaves the text to\n"
"Python (not ASCII, or not all of it a number PyOS_string_to_double reads). For tests.");

static PyObject *
to_float(PyObject *module, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "to_float() takes a str");
        return NULL;
    }
    if (!PyUnicode_CheckExact(text) || !PyUnicode_IS_COMPACT_ASCII(text)) {
        Py_RETURN_NONE;
    }
    double value;
    if (!text_to_double((const char *)PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text), &value)) {
        Py_RETURN_NONE;
    }
    return PyFloat_FromDouble(value);
}

PyDoc_STRVAR(configure_doc,
"configure(frame_type, data_type)\n\n"
"The types `run` judges (LeanFrame and its LeanData); a frame of any other type is\n"
"left to Python.");

static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyObject *frame, *data;
    if (!PyArg_ParseTuple(args, "O!O!:configure", &PyType_Type, &frame, &PyType_Type, &data)) {
        return NULL;
    }
    Py_INCREF(frame);
    Py_INCREF(data);
    Py_XSETREF(frame_type, (PyTypeObject *)frame);
    Py_XSETREF(data_type, (PyTypeObject *)data);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"run", (PyCFunction)(void (*)(void))run, METH_FASTCALL, run_doc},
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL, scan_doc},
    {"read_frame", read_frame, METH_O, read_frame_doc},
    {"configure", configure, METH_VARARGS, configure_doc},
    {"to_float", to_float, METH_O, to_float_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "cogmora.engine._quiet",
    "HotPath's quiet test over a burst, in C (see engine/prefilter.py).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

static int
intern(Role *role)
{
    role->n = 0;
    for (int i = 0; role->spelled[i] != NULL; i++) {
        role->names[i] = PyUnicode_InternFromString(role->spelled[i]);
        if (role->names[i] == NULL) {
            return -1;
        }
        role->n++;
    }
    return 0;
}

PyMODINIT_FUNC
PyInit__quiet(void)
{
    if (intern(&FRAME) < 0 || intern(&DATA) < 0 || intern(&REGION) < 0 || intern(&EDGES) < 0 ||
        intern(&LIVE) < 0) {
        return NULL;
    }
    return PyModule_Create(&module);
}
