/* Optional C accelerators of fairtune.augment.swapper; each has a pure-Python twin that gives the same result.
 *
 * derangement(): the group derangement of `ExampleState.permutation`, with the same draws as CPython's `random`.
 *
 * `random.Random(s)` for a str s seeds the Mersenne Twister with init_by_array() over the little-endian 32-bit
 * words of int.from_bytes(s.encode() + sha512(s.encode()).digest()); `shuffle()` draws j = _randbelow(i + 1) for
 * i = n-1 .. 1, and _randbelow(m) repeats getrandbits(m.bit_length()) (the top bits of one 32-bit output) until
 * the value is below m. `permutation()` reshuffles the same list until no position holds its own item. This file
 * does exactly that (the reference MT19937 code, as in CPython's Modules/_randommodule.c), so the result equals
 * the Python loop it replaces; fairtune falls back to that loop when this module is not built. The key words come
 * from Python (hashlib), so only the integer work is here.
 *
 * split_matches(): the common case of `Swapper._hits`, the automaton's matches split into the term hits (with their
 * lookup entries) and the vocabulary words, in one pass instead of two list comprehensions.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define N 624
#define M 397
#define MATRIX_A 0x9908b0dfU
#define UPPER_MASK 0x80000000U
#define LOWER_MASK 0x7fffffffU

typedef struct {
    uint32_t mt[N];
    int mti;
} mt_state;

static void init_genrand(mt_state *st, uint32_t s) {
    uint32_t *mt = st->mt;
    mt[0] = s;
    for (int i = 1; i < N; i++) {
        mt[i] = (1812433253U * (mt[i - 1] ^ (mt[i - 1] >> 30)) + (uint32_t)i);
    }
    st->mti = N;
}

/* init_genrand(19650218), the first step of every init_by_array: computed once at import. */
static mt_state base_state;

static void init_by_array(mt_state *st, const uint32_t *key, size_t key_length) {
    uint32_t *mt = st->mt;
    size_t i = 1, j = 0, k;
    memcpy(st, &base_state, sizeof(mt_state));
    k = (N > key_length ? N : key_length);
    for (; k; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525U)) + key[j] + (uint32_t)j;
        i++;
        j++;
        if (i >= N) {
            mt[0] = mt[N - 1];
            i = 1;
        }
        if (j >= key_length) j = 0;
    }
    for (k = N - 1; k; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941U)) - (uint32_t)i;
        i++;
        if (i >= N) {
            mt[0] = mt[N - 1];
            i = 1;
        }
    }
    mt[0] = 0x80000000U;
}

static uint32_t genrand_uint32(mt_state *st) {
    static const uint32_t mag01[2] = {0x0U, MATRIX_A};
    uint32_t y;
    uint32_t *mt = st->mt;
    if (st->mti >= N) {
        int kk;
        for (kk = 0; kk < N - M; kk++) {
            y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
            mt[kk] = mt[kk + M] ^ (y >> 1) ^ mag01[y & 0x1U];
        }
        for (; kk < N - 1; kk++) {
            y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
            mt[kk] = mt[kk + (M - N)] ^ (y >> 1) ^ mag01[y & 0x1U];
        }
        y = (mt[N - 1] & UPPER_MASK) | (mt[0] & LOWER_MASK);
        mt[N - 1] = mt[M - 1] ^ (y >> 1) ^ mag01[y & 0x1U];
        st->mti = 0;
    }
    y = mt[st->mti++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= (y >> 18);
    return y;
}

static int bit_length(uint32_t v) { /* v > 0 */
#if defined(__GNUC__) || defined(__clang__)
    return 32 - __builtin_clz(v);
#else
    int k = 0;
    while (v) {
        k++;
        v >>= 1;
    }
    return k;
#endif
}

PyDoc_STRVAR(derangement_doc,
             "derangement(key, n) -> list[int]\n\n"
             "Positions p with p[i] != i for all i: `random.Random` seeded by the little-endian key bytes (the int a\n"
             "str seed becomes), shuffling list(range(n)) again until it is a derangement.");

static PyObject *derangement(PyObject *self, PyObject *args) {
    Py_buffer key;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "y*n", &key, &n)) return NULL;
    if (n < 2 || n > 65536) {
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "derangement: n must be between 2 and 65536");
        return NULL;
    }
    /* The seed's words: CPython uses max(1, ceil(bits / 32)) words of the absolute value, little-endian. */
    Py_ssize_t nbytes = key.len;
    const unsigned char *kb = (const unsigned char *)key.buf;
    while (nbytes > 0 && kb[nbytes - 1] == 0) nbytes--;
    size_t words = nbytes == 0 ? 1 : (size_t)((nbytes + 3) / 4);
    uint32_t *kw = (uint32_t *)PyMem_Calloc(words, sizeof(uint32_t));
    uint32_t *x = (uint32_t *)PyMem_Malloc((size_t)n * sizeof(uint32_t));
    if (kw == NULL || x == NULL) {
        PyMem_Free(kw);
        PyMem_Free(x);
        PyBuffer_Release(&key);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t b = 0; b < nbytes; b++) kw[b / 4] |= (uint32_t)kb[b] << (8 * (b % 4));
    PyBuffer_Release(&key);

    mt_state st;
    init_by_array(&st, kw, words);
    PyMem_Free(kw);
    for (Py_ssize_t i = 0; i < n; i++) x[i] = (uint32_t)i;
    for (;;) {
        for (Py_ssize_t i = n - 1; i > 0; i--) {
            uint32_t m = (uint32_t)(i + 1);
            int shift = 32 - bit_length(m);
            uint32_t j = genrand_uint32(&st) >> shift;
            while (j >= m) j = genrand_uint32(&st) >> shift;
            uint32_t t = x[i];
            x[i] = x[j];
            x[j] = t;
        }
        int fixed = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (x[i] == (uint32_t)i) {
                fixed = 1;
                break;
            }
        }
        if (!fixed) break;
    }
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        PyMem_Free(x);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PyLong_FromUnsignedLong(x[i]);
        if (v == NULL) {
            Py_DECREF(out);
            PyMem_Free(x);
            return NULL;
        }
        PyList_SET_ITEM(out, i, v);
    }
    PyMem_Free(x);
    return out;
}

PyDoc_STRVAR(split_matches_doc,
             "split_matches(matches, entry, vocab, n_pure) -> (hits, words) | None\n\n"
             "For (pattern id, start, end) matches of one-word keys only: hits [(start, end - 2, entry[id])] where\n"
             "entry[id] is not None, and words [vocab[id]] where vocab[id] is not None. None when a pattern id is\n"
             "n_pure or more (a key of several words matched: the caller takes the general path).");

static PyObject *split_matches(PyObject *self, PyObject *args) {
    PyObject *ms, *entry, *vocab;
    Py_ssize_t n_pure;
    if (!PyArg_ParseTuple(args, "O!O!O!n", &PyList_Type, &ms, &PyList_Type, &entry, &PyList_Type, &vocab, &n_pure))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(ms), n_entry = PyList_GET_SIZE(entry), n_vocab = PyList_GET_SIZE(vocab);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *m = PyList_GET_ITEM(ms, i);
        if (!PyTuple_Check(m) || PyTuple_GET_SIZE(m) != 3) {
            PyErr_SetString(PyExc_TypeError, "split_matches: a match is not a (pattern id, start, end) tuple");
            return NULL;
        }
        Py_ssize_t pi = PyLong_AsSsize_t(PyTuple_GET_ITEM(m, 0));
        if (pi == -1 && PyErr_Occurred()) return NULL;
        if (pi < 0 || pi >= n_entry || pi >= n_vocab) {
            PyErr_SetString(PyExc_IndexError, "split_matches: pattern id out of range");
            return NULL;
        }
        if (pi >= n_pure) Py_RETURN_NONE;
    }
    PyObject *hits = PyList_New(0), *words = PyList_New(0);
    if (hits == NULL || words == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *m = PyList_GET_ITEM(ms, i);
        Py_ssize_t pi = PyLong_AsSsize_t(PyTuple_GET_ITEM(m, 0));
        PyObject *ent = PyList_GET_ITEM(entry, pi), *word = PyList_GET_ITEM(vocab, pi);
        if (ent != Py_None) {
            Py_ssize_t end = PyLong_AsSsize_t(PyTuple_GET_ITEM(m, 2));
            if (end == -1 && PyErr_Occurred()) goto fail;
            PyObject *stop = PyLong_FromSsize_t(end - 2);
            if (stop == NULL) goto fail;
            PyObject *hit = PyTuple_Pack(3, PyTuple_GET_ITEM(m, 1), stop, ent);
            Py_DECREF(stop);
            if (hit == NULL || PyList_Append(hits, hit) < 0) {
                Py_XDECREF(hit);
                goto fail;
            }
            Py_DECREF(hit);
        }
        if (word != Py_None && PyList_Append(words, word) < 0) goto fail;
    }
    PyObject *out = PyTuple_Pack(2, hits, words);
    Py_DECREF(hits);
    Py_DECREF(words);
    return out;
fail:
    Py_XDECREF(hits);
    Py_XDECREF(words);
    return NULL;
}

static PyMethodDef methods[] = {
    {"derangement", derangement, METH_VARARGS, derangement_doc},
    {"split_matches", split_matches, METH_VARARGS, split_matches_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups", "Optional C accelerators of fairtune.augment.swapper (see that module).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    init_genrand(&base_state, 19650218U);
    return PyModule_Create(&module);
}
