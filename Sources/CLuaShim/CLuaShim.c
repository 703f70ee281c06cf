/*
** CLuaShim.c: the trampoline, the allocator, the message handler and the interrupt hook.
** Everything here that can raise a Lua error does so in C frames only.
*/
#include "CLuaShim.h"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <readline/readline.h>

static void *tycho_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud; (void)osize;
    if (nsize == 0) { free(ptr); return NULL; }
    void *p = realloc(ptr, nsize);
    if (p == NULL) {
        fprintf(stderr, "tycho: out of memory (Lua allocation of %zu bytes)\n", nsize);
        abort();
    }
    return p;
}

static int tycho_panic(lua_State *L) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "tycho: unprotected Lua error: %s\n", msg ? msg : "(error object is not a string)");
    abort();
    return 0;
}

lua_State *tycho_newstate(void) {
    lua_State *L = lua_newstate(tycho_alloc, NULL);
    if (L) lua_atpanic(L, tycho_panic);
    return L;
}

static tycho_dispatcher the_dispatcher = NULL;

void tycho_set_dispatcher(tycho_dispatcher d) { the_dispatcher = d; }

static int tycho_trampoline(lua_State *L) {
    void *binding = lua_touserdata(L, lua_upvalueindex(1));
    int n = the_dispatcher(L, binding);
    if (n >= 0) return n;
    /* The Swift frame has returned: raising is safe now. -2: re-raise the error object on top as it is. */
    if (n == -2) return lua_error(L);
    if (lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

void tycho_pushbinding(lua_State *L, void *binding) {
    lua_pushlightuserdata(L, binding);
    lua_pushcclosure(L, tycho_trampoline, 1);
}

int tycho_isbinding(lua_State *L, int idx) {
    return lua_tocfunction(L, idx) == tycho_trampoline;
}

void *tycho_tobinding(lua_State *L, int idx) {
    if (!tycho_isbinding(L, idx)) return NULL;
    if (lua_getupvalue(L, idx, 1) == NULL) return NULL;
    void *p = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return p;
}

int tycho_msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static int ptolstring_body(lua_State *L) {
    luaL_tolstring(L, 1, NULL);
    return 1;
}

int tycho_ptolstring(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    lua_pushcfunction(L, ptolstring_body);
    lua_pushvalue(L, idx);
    return lua_pcall(L, 1, 1, 0);
}

/* MARK: interrupts */
static lua_State *volatile interrupt_state = NULL;
static volatile sig_atomic_t interrupt_pending = 0;
static volatile sig_atomic_t interrupt_persistent = 0;
static volatile unsigned long interrupt_counter = 0;

static void lstop(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    interrupt_pending = 0;
    luaL_error(L, "interrupted!");
}

static void laction(int sig) {
    int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
    interrupt_counter++;
    if (!interrupt_persistent)
        signal(sig, SIG_DFL); /* a second Ctrl-C before the hook runs terminates, as in lua.c */
    if (interrupt_state) lua_sethook(interrupt_state, lstop, flag, 1);
}

void tycho_interrupt_arm(lua_State *L) {
    interrupt_state = L;
    signal(SIGINT, laction);
    /* A launcher may have left SIGINT blocked (the mask is inherited across exec); Ctrl-C must reach the chunk. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

void tycho_interrupt_disarm(void) {
    signal(SIGINT, interrupt_persistent ? laction : SIG_DFL);
    if (interrupt_state) lua_sethook(interrupt_state, NULL, 0, 0);
    interrupt_state = NULL;
}

void tycho_interrupt_request(void) {
    int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
    interrupt_counter++;
    if (interrupt_state) lua_sethook(interrupt_state, lstop, flag, 1);
}

void tycho_interrupt_set_persistent(int on) {
    interrupt_persistent = on ? 1 : 0;
    signal(SIGINT, on ? laction : SIG_DFL);
    if (on) {
        /* A launcher may have left SIGINT blocked (it is inherited across exec); the kernel must receive it. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    }
}

unsigned long tycho_interrupt_count(void) { return interrupt_counter; }

/* MARK: Ctrl-C at the prompt: clear the line and show a fresh prompt */
static volatile sig_atomic_t prompt_sigint = 0;

static void prompt_sigint_handler(int sig) {
    (void)sig;
    prompt_sigint = 1;
    (void)!write(STDOUT_FILENO, "^C\n", 3);
    rl_on_new_line();
    rl_replace_line("", 0);
    rl_redisplay();
}

void tycho_readline_prompt_sigint_install(void) {
    rl_catch_signals = 0;
    signal(SIGINT, prompt_sigint_handler);
}

int tycho_readline_take_sigint(void) {
    int v = prompt_sigint;
    prompt_sigint = 0;
    return v;
}
