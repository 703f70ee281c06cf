/*
** Sandbox.c: separate Lua states for untrusted grader code (rft.grader.lua).
**
** A sandbox is its own lua_State with
**   - an allocator that counts the state's bytes and, while enforcement is on, refuses to grow past a cap
**     (Lua then raises "not enough memory" inside the protected call);
**   - a count hook that raises once an instruction budget is spent, and from then on at every instruction;
**   - only the base (without dofile, loadfile, warn), string (without dump), table, math, utf8 and coroutine
**     libraries: no io, os, debug, package or require. `load` accepts text only, `setmetatable` refuses __gc
**     (finalizers run with hooks off, so they could not be stopped), `collectgarbage` allows collect, count,
**     step and isrunning, and `print` appends to a log the host reads.
**   - `pcall`, `xpcall` and `coroutine.resume` that re-raise once the budget or the cap has killed the run, so
**     a grader cannot catch its own end and carry on.
**   - string.find, match, gmatch and gsub whose matcher charges its steps to the budget (SandboxPatterns.c):
**     Lua's own runs inside one instruction, where the hook cannot stop a pattern that backtracks for long.
** Everything that can raise runs inside lua_pcall from C, or in hooks and C functions called by Lua: no Lua
** error ever crosses a Swift frame.
*/
#include "CLuaShim.h"
#include "SandboxInternal.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t bytes;        /* bytes held by the state now */
    size_t peak;         /* most bytes held while enforcing */
    size_t max_bytes;    /* the cap, enforced while `enforce` */
    size_t refused;      /* size of the last refused request (0: none) */
    long long count;     /* instructions counted so far (in steps of `step`) */
    long long max_count; /* the budget */
    int step;            /* the hook's count */
    int enforce;
    int killed;          /* TYCHO_SANDBOX_OK, _BUDGET or _MEMORY */
    size_t log_bytes;    /* bytes appended to the print log */
} sandbox_t;

#define SANDBOX_LOG_LIMIT 4096
#define SANDBOX_LOG_KEY "tycho.sandbox.log"

static sandbox_t *sandbox_of(lua_State *L) {
    void *ud = NULL;
    (void)lua_getallocf(L, &ud);
    return (sandbox_t *)ud;
}

static void *sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    sandbox_t *sb = (sandbox_t *)ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        sb->bytes -= old;
        return NULL;
    }
    if (nsize > old && sb->enforce && sb->bytes - old + nsize > sb->max_bytes) {
        sb->refused = nsize;
        return NULL; /* Lua collects, retries, then raises a memory error in protected code */
    }
    void *p = realloc(ptr, nsize);
    if (p == NULL) {
        if (nsize <= old) return ptr; /* Lua assumes shrinking never fails */
        sb->refused = nsize;
        return NULL;
    }
    sb->bytes = sb->bytes - old + nsize;
    if (sb->enforce && sb->bytes > sb->peak) sb->peak = sb->bytes;
    return p;
}

static int sandbox_panic(lua_State *L) {
    (void)L;
    /* Only reachable by a bug in the host (an allocation outside protected mode with the cap off failing). */
    abort();
    return 0;
}

/* MARK: the budget */

static void sandbox_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    sandbox_t *sb = sandbox_of(L);
    if (!sb->enforce) return;
    if (!sb->killed) {
        sb->count += sb->step;
        if (sb->count < sb->max_count) return;
        sb->killed = TYCHO_SANDBOX_BUDGET;
    }
    lua_sethook(L, sandbox_hook, LUA_MASKCOUNT, 1); /* from now on, every instruction of this thread fails */
    luaL_error(L, "instruction budget exceeded");
}

void tycho_sandbox_charge(lua_State *L, long steps) {
    sandbox_t *sb = sandbox_of(L);
    if (!sb->enforce) return;
    sb->count += steps;
    if (!sb->killed && sb->count < sb->max_count) return;
    if (!sb->killed) sb->killed = TYCHO_SANDBOX_BUDGET;
    luaL_error(L, sb->killed == TYCHO_SANDBOX_MEMORY ? "memory cap exceeded" : "instruction budget exceeded");
}

/* Raises again when the run was killed: a grader must not catch its own end. */
static void sandbox_check(lua_State *L, int status) {
    sandbox_t *sb = sandbox_of(L);
    if (status == LUA_ERRMEM && sb->enforce && !sb->killed) sb->killed = TYCHO_SANDBOX_MEMORY;
    if (sb->killed == TYCHO_SANDBOX_BUDGET) luaL_error(L, "instruction budget exceeded");
    if (sb->killed == TYCHO_SANDBOX_MEMORY) luaL_error(L, "memory cap exceeded");
}

/* MARK: pcall, xpcall and coroutine.resume that re-raise a kill (lbaselib.c's, plus the check) */

static int finishpcall(lua_State *L, int status, lua_KContext extra) {
    if (status != LUA_OK && status != LUA_YIELD) {
        sandbox_check(L, status);
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        return 2;
    }
    sandbox_check(L, LUA_OK);
    return lua_gettop(L) - (int)extra;
}

static int sandbox_pcall(lua_State *L) {
    luaL_checkany(L, 1);
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, finishpcall);
    return finishpcall(L, status, 0);
}

/* The message handler around the grader's own: an error raised by the hook runs the handler with hooks off
** (Lua leaves them off until the error is caught), so after a kill no grader code may run there. */
static int sandbox_msgh(lua_State *L) {
    if (sandbox_of(L)->killed) return 1; /* the message as it is */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int sandbox_xpcall(lua_State *L) {
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, sandbox_msgh, 1);
    lua_replace(L, 2);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 1);
    lua_rotate(L, 3, 2);
    int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finishpcall);
    return finishpcall(L, status, 2);
}

static int sandbox_resume(lua_State *L) {
    /* upvalue 1: the original coroutine.resume; it is a plain C function that does not yield itself */
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    if (lua_type(L, 1) == LUA_TBOOLEAN && !lua_toboolean(L, 1) && lua_type(L, 2) == LUA_TSTRING &&
        strcmp(lua_tostring(L, 2), "not enough memory") == 0)
        sandbox_check(L, LUA_ERRMEM);
    else
        sandbox_check(L, LUA_OK);
    return lua_gettop(L);
}

/* MARK: print appends to the log (tab-separated values, a newline per call, at most 4 KB) */

static int sandbox_print(lua_State *L) {
    sandbox_t *sb = sandbox_of(L);
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        (void)luaL_tolstring(L, i, NULL); /* runs __tostring, under the budget */
        luaL_addvalue(&b);
    }
    luaL_addchar(&b, '\n');
    luaL_pushresult(&b);
    if (sb->log_bytes >= SANDBOX_LOG_LIMIT) return 0;
    size_t len;
    const char *line = lua_tolstring(L, -1, &len);
    if (sb->log_bytes + len > SANDBOX_LOG_LIMIT) {
        lua_pushlstring(L, line, SANDBOX_LOG_LIMIT - sb->log_bytes);
        lua_pushliteral(L, "...(log truncated)\n");
        lua_concat(L, 2);
        len = SANDBOX_LOG_LIMIT - sb->log_bytes;
    }
    sb->log_bytes += len;
    lua_getfield(L, LUA_REGISTRYINDEX, SANDBOX_LOG_KEY);
    lua_insert(L, -2);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

/* MARK: opening the libraries */

static const char *const sandbox_prelude =
    "local error, type, select, tostring, rawget, rawload, rawsetmt, gc = "
    "  error, type, select, tostring, rawget, load, setmetatable, collectgarbage\n"
    "local G = _G\n"
    "local refused = {io=true, os=true, debug=true, package=true, require=true, dofile=true, loadfile=true}\n"
    "function load(chunk, name, mode, ...)\n"
    "  if type(chunk) == 'string' and chunk:byte(1) == 27 then\n"
    "    error('load: precompiled (binary) chunks are not allowed in a sandboxed grader', 2)\n"
    "  end\n"
    "  if select('#', ...) == 0 then return rawload(chunk, name, 't', G) end\n"
    "  return rawload(chunk, name, 't', (...))\n"
    "end\n"
    "function setmetatable(t, mt)\n"
    "  if type(mt) == 'table' and rawget(mt, '__gc') ~= nil then\n"
    "    error('setmetatable: __gc metamethods are not allowed in a sandboxed grader', 2)\n"
    "  end\n"
    "  return rawsetmt(t, mt)\n"
    "end\n"
    "local gcallowed = {collect=true, count=true, step=true, isrunning=true}\n"
    "function collectgarbage(opt, ...)\n"
    "  opt = opt or 'collect'\n"
    "  if not gcallowed[opt] then\n"
    "    error(\"collectgarbage: option '\" .. tostring(opt) .. \"' is not allowed in a sandboxed grader\", 2)\n"
    "  end\n"
    "  return gc(opt, ...)\n"
    "end\n"
    "string.dump = function() error('string.dump is not available in a sandboxed grader', 2) end\n"
    "math.randomseed(0)\n"
    "rawsetmt(G, {__index = function(_, k)\n"
    "  if refused[k] then\n"
    "    error(tostring(k) .. ' is not available in a sandboxed grader (no io, os, debug, package, require, '\n"
    "      .. 'dofile or loadfile)', 2)\n"
    "  end\n"
    "end})\n";

static int sandbox_open_body(lua_State *L) {
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 1);
    lua_settop(L, 0);
    tycho_sandbox_open_patterns(L);
    lua_pushglobaltable(L);
    const char *removed[] = {"dofile", "loadfile", "warn", NULL};
    for (int i = 0; removed[i]; i++) {
        lua_pushnil(L);
        lua_setfield(L, 1, removed[i]);
    }
    lua_pushcfunction(L, sandbox_pcall);
    lua_setfield(L, 1, "pcall");
    lua_pushcfunction(L, sandbox_xpcall);
    lua_setfield(L, 1, "xpcall");
    lua_pushcfunction(L, sandbox_print);
    lua_setfield(L, 1, "print");
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, 1, "null"); /* JSON null in sample and item */
    lua_getfield(L, 1, LUA_COLIBNAME);
    lua_getfield(L, -1, "resume");
    lua_pushcclosure(L, sandbox_resume, 1);
    lua_setfield(L, -2, "resume");
    lua_pop(L, 1);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, SANDBOX_LOG_KEY);
    if (luaL_loadbufferx(L, sandbox_prelude, strlen(sandbox_prelude), "=sandbox", "t") != LUA_OK) return lua_error(L);
    lua_call(L, 0, 0);
    return 0;
}

/* MARK: the host's API */

lua_State *tycho_sandbox_new(size_t max_bytes, long long max_instructions) {
    sandbox_t *sb = calloc(1, sizeof(sandbox_t));
    if (!sb) return NULL;
    sb->max_bytes = max_bytes;
    sb->max_count = max_instructions;
    sb->step = max_instructions < 1000 ? (int)(max_instructions > 0 ? max_instructions : 1) : 1000;
    lua_State *L = lua_newstate(sandbox_alloc, sb);
    if (!L) { free(sb); return NULL; }
    lua_atpanic(L, sandbox_panic);
    return L;
}

int tycho_sandbox_open(lua_State *L) {
    lua_pushcfunction(L, sandbox_open_body);
    return lua_pcall(L, 0, 0, 0);
}

void tycho_sandbox_enforce(lua_State *L, int on) {
    sandbox_t *sb = sandbox_of(L);
    sb->enforce = on;
    if (on) {
        if (sb->bytes > sb->peak) sb->peak = sb->bytes;
        lua_sethook(L, sandbox_hook, LUA_MASKCOUNT, sb->killed ? 1 : sb->step);
    } else {
        lua_sethook(L, NULL, 0, 0);
    }
}

int tycho_sandbox_killed(lua_State *L, int status) {
    sandbox_t *sb = sandbox_of(L);
    if (status == LUA_ERRMEM && !sb->killed) sb->killed = TYCHO_SANDBOX_MEMORY;
    return sb->killed;
}

long long tycho_sandbox_instructions(lua_State *L) { return sandbox_of(L)->count; }
size_t tycho_sandbox_peak_bytes(lua_State *L) { return sandbox_of(L)->peak; }
size_t tycho_sandbox_refused_bytes(lua_State *L) { return sandbox_of(L)->refused; }

int tycho_sandbox_pushlog(lua_State *L) {
    return lua_getfield(L, LUA_REGISTRYINDEX, SANDBOX_LOG_KEY);
}

void tycho_sandbox_close(lua_State *L) {
    sandbox_t *sb = sandbox_of(L);
    sb->enforce = 0;
    lua_close(L);
    free(sb);
}

/* MARK: where a host function was defined (for recovering its source) */

int tycho_funcinfo(lua_State *L, int idx, tycho_funcinfo_t *out) {
    lua_Debug ar;
    lua_pushvalue(L, idx);
    if (!lua_getinfo(L, ">Su", &ar)) return 0;
    out->source = ar.source;
    out->srclen = ar.srclen;
    out->linedefined = ar.linedefined;
    out->lastlinedefined = ar.lastlinedefined;
    out->nups = ar.nups;
    out->nparams = ar.nparams;
    out->isvararg = ar.isvararg;
    out->isC = ar.what[0] == 'C';
    return 1;
}
