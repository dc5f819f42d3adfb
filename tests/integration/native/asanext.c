/* A tiny CPython extension for the ASan end-to-end tests
 * (tests/integration/test_native_runtimes.py).
 *
 * Built with -fsanitize=address, so importing it loads the ASan runtime
 * (libasan.so.8 with gcc, libclang_rt.asan-x86_64.so with clang
 * -shared-libasan). The module name is given at build time:
 *   -DEXT_NAME=asanext_gcc  ->  PyInit_asanext_gcc
 *
 *   ok()        allocates, fills and sums a heap buffer: returns 4950
 *   overflow()  writes one byte past the end of a heap buffer (a deliberate
 *               heap-buffer-overflow that ASan must report)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define STR2(x) #x
#define STR(x) STR2(x)

static PyObject* ext_ok(PyObject* self, PyObject* unused) {
  (void)self;
  (void)unused;
  int* buf = malloc(100 * sizeof(int));
  if (buf == NULL) return PyErr_NoMemory();
  long sum = 0;
  for (int i = 0; i < 100; i++) buf[i] = i;
  for (int i = 0; i < 100; i++) sum += buf[i];
  free(buf);
  return PyLong_FromLong(sum);
}

/* volatile: keep the compiler from proving the write out of bounds and
 * dropping or rewriting it. */
static volatile size_t past_the_end = 16;

static PyObject* ext_overflow(PyObject* self, PyObject* unused) {
  (void)self;
  (void)unused;
  char* buf = malloc(16);
  if (buf == NULL) return PyErr_NoMemory();
  buf[past_the_end] = 'x'; /* heap-buffer-overflow: one byte past the end */
  long seen = buf[past_the_end];
  free(buf);
  return PyLong_FromLong(seen);
}

static PyMethodDef methods[] = {
    {"ok", ext_ok, METH_NOARGS, "allocate, fill and sum a heap buffer"},
    {"overflow", ext_overflow, METH_NOARGS, "write one byte past a heap buffer"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    STR(EXT_NAME),
    "ASan test extension",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC CAT(PyInit_, EXT_NAME)(void) {
  return PyModule_Create(&module);
}
