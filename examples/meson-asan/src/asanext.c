/* An extension built with -fsanitize=address: it needs the ASan runtime
 * first in the process's library list, in every interpreter that imports
 * it, spawn workers included. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>

/* Sums 0..n-1 through a heap buffer: fine under ASan. */
static PyObject* total(PyObject* self, PyObject* arg) {
  (void)self;
  long n = PyLong_AsLong(arg);
  if (n < 0 || PyErr_Occurred()) return PyErr_Occurred() ? NULL : PyLong_FromLong(0);
  long* buffer = malloc(sizeof(long) * (size_t)(n + 1));
  if (buffer == NULL) return PyErr_NoMemory();
  long sum = 0;
  for (long i = 0; i < n; ++i) buffer[i] = i;
  for (long i = 0; i < n; ++i) sum += buffer[i];
  free(buffer);
  return PyLong_FromLong(sum);
}

/* Writes one element past a heap buffer: ASan must report it and abort. */
static PyObject* overflow(PyObject* self, PyObject* unused) {
  (void)self;
  (void)unused;
  volatile int* buffer = malloc(4 * sizeof(int));
  buffer[4] = 1;
  free((void*)buffer);
  Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"total", total, METH_O, "sum(range(n)) through a heap buffer"},
    {"overflow", overflow, METH_NOARGS, "a heap-buffer-overflow"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "asanext", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_asanext(void) {
  return PyModule_Create(&module);
}
