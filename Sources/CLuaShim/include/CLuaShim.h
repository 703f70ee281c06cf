/*
** CLuaShim: the C side of Tycho's Lua bridge.
**
** Swift cannot import Lua's function-like macros, computed constants or variadic functions, and it must
** never be unwound by a longjmp. This header wraps the macros as static inline functions, and declares the
** one trampoline through which every Swift function registered in Lua is called: the Swift function returns
** a status and the trampoline raises the Lua error in C, after the Swift frame is gone.
*/
#ifndef TYCHO_CLUASHIM_H
#define TYCHO_CLUASHIM_H

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

/* MARK: constants Swift cannot import */
static inline int tycho_registryindex(void) { return LUA_REGISTRYINDEX; }
static inline int tycho_upvalueindex(int i) { return lua_upvalueindex(i); }
static inline int tycho_multret(void) { return LUA_MULTRET; }

/* MARK: macros as functions */
static inline void tycho_pop(lua_State *L, int n) { lua_pop(L, n); }
static inline void tycho_newtable(lua_State *L) { lua_newtable(L); }
static inline void tycho_insert(lua_State *L, int idx) { lua_insert(L, idx); }
static inline void tycho_remove(lua_State *L, int idx) { lua_remove(L, idx); }
static inline void tycho_replace(lua_State *L, int idx) { lua_replace(L, idx); }
static inline int tycho_pcall(lua_State *L, int nargs, int nresults, int msgh) {
    return lua_pcall(L, nargs, nresults, msgh);
}
static inline int tycho_isnoneornil(lua_State *L, int idx) { return lua_isnoneornil(L, idx); }
static inline void *tycho_newuserdata(lua_State *L, size_t size) { return lua_newuserdatauv(L, size, 1); }
static inline int tycho_getuservalue(lua_State *L, int idx) { return lua_getiuservalue(L, idx, 1); }
static inline int tycho_setuservalue(lua_State *L, int idx) { return lua_setiuservalue(L, idx, 1); }
static inline const char *tycho_typename(lua_State *L, int idx) { return lua_typename(L, lua_type(L, idx)); }

/* MARK: state creation
** An allocator that aborts with a message on out-of-memory, and a panic handler, so that neither ever
** longjmps through Swift. */
lua_State *tycho_newstate(void);

/* MARK: the trampoline
** Every Swift binding is a C closure of `tycho_trampoline` with upvalue 1 = a light userdata naming the
** Swift binding. The Swift dispatcher (set once with `tycho_set_dispatcher`) returns:
**   n >= 0: the number of results it pushed;
**   -1    : failure; the message string is on top of the stack (position info is prepended here).
*/
typedef int (*tycho_dispatcher)(lua_State *L, void *binding);
void tycho_set_dispatcher(tycho_dispatcher d);
void tycho_pushbinding(lua_State *L, void *binding);
int tycho_isbinding(lua_State *L, int idx);
void *tycho_tobinding(lua_State *L, int idx);

/* MARK: protected helpers */
/* Message handler for lua_pcall: appends a traceback (lua.c's msghandler). */
int tycho_msghandler(lua_State *L);
/* Converts the value at idx to a string as `tostring` does, in protected mode. Returns 0 on success,
** leaving the string on the stack; otherwise leaves the error message. */
int tycho_ptolstring(lua_State *L, int idx);

/* MARK: interrupts (lua.c's laction/lstop)
** While a chunk runs, SIGINT installs a hook that raises "interrupted!". A second Ctrl-C before the hook
** fires kills the process, as in lua.c. */
void tycho_interrupt_arm(lua_State *L);
void tycho_interrupt_disarm(void);
/* Requests an interrupt programmatically (used by tests and the kernel). */
void tycho_interrupt_request(void);
/* Kernel mode (on != 0): SIGINT never terminates the process. While a chunk runs it interrupts the chunk; when
** none runs it is only counted. */
void tycho_interrupt_set_persistent(int on);
/* How many interrupts (signals or requests) arrived so far; a waiting loop compares counts to notice one. */
unsigned long tycho_interrupt_count(void);

/* MARK: captured standard streams (notebooks and the kernel)
** A C stdio stream whose writes and reads call back into the host: `write(ctx, stream, buf, n)` returns the
** bytes taken; `read(ctx, buf, n)` returns the bytes given, 0 at end of input, -1 on error. `stream` is the number
** passed here (1 stdout, 2 stderr, 0 stdin). The stream is unbuffered for writing and owned by the caller. */
typedef long (*tycho_capture_write_fn)(void *ctx, int stream, const char *buf, size_t n);
typedef long (*tycho_capture_read_fn)(void *ctx, char *buf, size_t n);
FILE *tycho_capture_open(void *ctx, int stream, tycho_capture_write_fn write, tycho_capture_read_fn read);
/* Points the Lua file handle at idx (io.stdout, io.stderr, io.stdin) at `f`; returns the FILE it had, or NULL
** when the value is not a Lua file handle. */
FILE *tycho_file_handle_swap(lua_State *L, int idx, FILE *f);

/* MARK: readline prompt helpers */
void tycho_readline_prompt_sigint_install(void);
int tycho_readline_take_sigint(void);


/* MARK: extra space (one pointer per state, copied to new threads) */
static inline void *tycho_getextra(lua_State *L) { return *(void **)lua_getextraspace(L); }
static inline void tycho_setextra(lua_State *L, void *p) { *(void **)lua_getextraspace(L) = p; }

/* MARK: lua_gc is variadic */
static inline int tycho_gc_step(lua_State *L, int kb) { return lua_gc(L, LUA_GCSTEP, kb); }
static inline int tycho_gc_collect(lua_State *L) { return lua_gc(L, LUA_GCCOLLECT); }
static inline int tycho_gc_count_kb(lua_State *L) { return lua_gc(L, LUA_GCCOUNT); }
static inline int tycho_gc_generational(lua_State *L) { return lua_gc(L, LUA_GCGEN, 0, 0); }
static inline int tycho_gc_incremental(lua_State *L) { return lua_gc(L, LUA_GCINC, 0, 0, 0); }

/* MARK: sandboxes for grader code (Sandbox.c)
** A separate state with its own allocator (a byte cap, enforced while tycho_sandbox_enforce(L, 1)), a count
** hook spending an instruction budget (also only while enforcing), and only safe libraries. Close it with
** tycho_sandbox_close, never lua_close. */
enum { TYCHO_SANDBOX_OK = 0, TYCHO_SANDBOX_BUDGET = 1, TYCHO_SANDBOX_MEMORY = 2 };
lua_State *tycho_sandbox_new(size_t max_bytes, long long max_instructions);
/* Opens the safe libraries in protected mode: LUA_OK, or an error status with the message on the stack. */
int tycho_sandbox_open(lua_State *L);
void tycho_sandbox_enforce(lua_State *L, int on);
/* Why a protected call that returned `status` failed: TYCHO_SANDBOX_BUDGET, _MEMORY, or _OK (a plain error). */
int tycho_sandbox_killed(lua_State *L, int status);
long long tycho_sandbox_instructions(lua_State *L);
size_t tycho_sandbox_peak_bytes(lua_State *L);
size_t tycho_sandbox_refused_bytes(lua_State *L);
/* Pushes the list of lines `print` appended (a table). */
int tycho_sandbox_pushlog(lua_State *L);
void tycho_sandbox_close(lua_State *L);

/* Where the function at idx was defined (lua_getinfo "Su"); returns 0 if unavailable. */
typedef struct {
    const char *source;
    size_t srclen;
    int linedefined, lastlinedefined;
    int nups, nparams, isvararg, isC;
} tycho_funcinfo_t;
int tycho_funcinfo(lua_State *L, int idx, tycho_funcinfo_t *out);

#endif
