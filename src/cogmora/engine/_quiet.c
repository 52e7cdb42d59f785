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
    int stores_last;                    /* the last name is written to (needs a generic setattr) */
    int n;
    int next;
    PyObject *names[MAX_NAMES];
    Layout ways[WAYS];
} Role;

/* The only frame and data types judged here (`configure`): LeanFrame and LeanData. */
static PyTypeObject *frame_type = NULL, *data_type = NULL;

static Role FRAME = {.spelled = {"topic", "data", NULL}};
static Role DATA = {.spelled = {"price", NULL}};
static Role REGION = {.spelled = {"flo", "fhi", "limit", "pivot", "text", NULL}, .stores_last = 1};
static Role EDGES = {.spelled = {"flo", "fhi", "count", NULL}};

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
    if (role->stores_last && type->tp_setattro != PyObject_GenericSetAttr) {
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
        if (role->stores_last && i == role->n - 1 && (m->flags & READONLY)) {
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

PyDoc_STRVAR(run_doc,
"run(frames, start, cache, held, edges, no_levels, texts, trades, entry) -> int\n\n"
"Judge frames[start:] as HotPath's Python loop does, making the quiet stores\n"
"(region.text, texts[symbol], trades[symbol] = entry) for each quiet frame, up to the\n"
"first frame it does not call quiet: that frame's index (len(frames) if none).");

static PyObject *
run(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "run() takes 9 arguments");
        return NULL;
    }
    PyObject *frames = args[0];
    Py_ssize_t i = PyLong_AsSsize_t(args[1]);
    if (i == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *cache = args[2], *held = args[3], *edges_map = args[4], *no_levels = args[5];
    PyObject *texts = args[6], *trades = args[7], *entry_value = args[8];
    if (!PyList_CheckExact(frames) || !PyDict_CheckExact(cache) ||
        !PyDict_CheckExact(edges_map) || !PyDict_CheckExact(texts) ||
        !PyDict_CheckExact(trades) || i < 0) {
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
        /* The text tests first (they need no float): at least one character, the first
           "0" or above (so no sign, point or space), no minus sign (an exponent). */
        Py_ssize_t len = PyUnicode_GET_LENGTH(text);
        const char *s = (const char *)PyUnicode_DATA(text);
        if (len == 0 || s[0] < '0' || memchr(s, '-', (size_t)len) != NULL) {
            break;
        }
        PyObject *entry = PyDict_GetItemWithError(cache, topic);
        if (entry == NULL) {
            if (PyErr_Occurred()) {
                return NULL;
            }
            break; /* not cached yet: Python looks the topic up */
        }
        if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 3) {
            break;
        }
        PyObject *symbol = PyTuple_GET_ITEM(entry, 0);
        PyObject *region = PyTuple_GET_ITEM(entry, 1);
        PyObject *edges = PyTuple_GET_ITEM(entry, 2);
        if (!PyUnicode_CheckExact(symbol)) {
            break; /* its hash or equality could be Python code */
        }
        /* float(text) for an ASCII text with no space and no underscore is
           PyOS_string_to_double on the whole text; anything it does not read to the end,
           Python reads. */
        double price;
        if (!text_to_double(s, len, &price)) {
            break;
        }
        Layout *rl = layout_of(&REGION, Py_TYPE(region));
        if (rl == NULL) {
            break;
        }
        double rflo, rfhi, pivot;
        if (!float_of(SLOT(region, rl, 0), &rflo) || !float_of(SLOT(region, rl, 1), &rfhi) ||
            !(rflo < price && price < rfhi)) {
            break;
        }
        PyObject *limit_obj = SLOT(region, rl, 2);
        if (limit_obj == NULL || !PyLong_CheckExact(limit_obj) ||
            !float_of(SLOT(region, rl, 3), &pivot)) {
            break;
        }
        int overflow = 0;
        long long limit = PyLong_AsLongLongAndOverflow(limit_obj, &overflow);
        if (overflow || (limit == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            break;
        }
        /* len(text) <= limit + (price > pivot), without overflow */
        if ((long long)len - (price > pivot) > limit) {
            break;
        }
        Layout *el = layout_of(&EDGES, Py_TYPE(edges));
        if (el == NULL) {
            break;
        }
        PyObject *count = SLOT(edges, el, 2);
        if (count == NULL || !PyLong_CheckExact(count)) {
            break;
        }
        int levels = PyObject_IsTrue(count);
        if (levels < 0) {
            PyErr_Clear();
            break;
        }
        if (!levels) {
            /* No level (or no longer the book's): quiet by these edges only while they
               are still what the book maps the symbol to; else Python caches the new. */
            PyObject *now = PyDict_GetItemWithError(edges_map, symbol);
            if (now == NULL) {
                if (PyErr_Occurred()) {
                    return NULL;
                }
                now = no_levels;
            }
            if (now != edges) {
                break;
            }
        }
        double eflo, efhi;
        if (!float_of(SLOT(edges, el, 0), &eflo) || !float_of(SLOT(edges, el, 1), &efhi) ||
            !(eflo < price && price < efhi)) {
            break;
        }
        if (is_held(held, symbol) != 0) {
            break;
        }
        /* Quiet: the filter's band reference and the live price, as the Python loop. */
        Py_INCREF(entry);
        Py_INCREF(text);
        PyObject **slot = &SLOT(region, rl, 4);
        PyObject *old = *slot;
        Py_INCREF(text);
        *slot = text;
        Py_XDECREF(old);
        int failed = PyDict_SetItem(texts, symbol, text) < 0 ||
                     PyDict_SetItem(trades, symbol, entry_value) < 0;
        Py_DECREF(text);
        Py_DECREF(entry);
        if (failed) {
            return NULL;
        }
    }
    return PyLong_FromSsize_t(i);
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
    if (intern(&FRAME) < 0 || intern(&DATA) < 0 || intern(&REGION) < 0 || intern(&EDGES) < 0) {
        return NULL;
    }
    return PyModule_Create(&module);
}
