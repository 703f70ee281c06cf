/*
** capture.c: standard streams that call back into the host (glibc's fopencookie), so that a notebook cell's
** io.write, io.stdout:write, io.stderr:write and io.stdin reads go to the notebook instead of the process's
** descriptors. Nothing here raises a Lua error: the callbacks only move bytes.
*/
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include "CLuaShim.h"

typedef struct {
    void *ctx;
    int stream;
    tycho_capture_write_fn write;
    tycho_capture_read_fn read;
} capture_cookie;

static ssize_t capture_write(void *c, const char *buf, size_t n) {
    capture_cookie *k = c;
    if (!k->write) return -1;
    long r = k->write(k->ctx, k->stream, buf, n);
    return r < 0 ? -1 : (ssize_t)r;
}

static ssize_t capture_read(void *c, char *buf, size_t n) {
    capture_cookie *k = c;
    if (!k->read) return 0;
    long r = k->read(k->ctx, buf, n);
    return r < 0 ? -1 : (ssize_t)r;
}

static int capture_close(void *c) {
    free(c);
    return 0;
}

FILE *tycho_capture_open(void *ctx, int stream, tycho_capture_write_fn write, tycho_capture_read_fn read) {
    capture_cookie *k = malloc(sizeof *k);
    if (!k) return NULL;
    k->ctx = ctx; k->stream = stream; k->write = write; k->read = read;
    cookie_io_functions_t fns = { capture_read, capture_write, NULL, capture_close };
    FILE *f = fopencookie(k, read ? "r" : "w", fns);
    if (!f) { free(k); return NULL; }
    if (!read) setvbuf(f, NULL, _IONBF, 0);
    return f;
}

FILE *tycho_file_handle_swap(lua_State *L, int idx, FILE *f) {
    luaL_Stream *p = (luaL_Stream *)luaL_testudata(L, idx, LUA_FILEHANDLE);
    if (!p || !p->f) return NULL;
    FILE *old = p->f;
    p->f = f;
    return old;
}
