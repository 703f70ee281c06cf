/*
** SandboxPatterns.c: string.find, string.match, string.gmatch and string.gsub for sandboxed states, with Lua 5.4's
** pattern semantics (manual section 6.4.1) and one difference: every step of the matcher is charged to the
** sandbox's instruction budget. Lua's own matcher runs inside one VM instruction, so the count hook cannot stop
** a pattern that backtracks for a long time ("(.-)(.-)(.-)...x" on a long subject); this one raises
** "instruction budget exceeded" like any other endless work. Results and error messages follow the reference
** implementation; Tests/lua/rft_graders.lua compares them with the host's string library on random cases.
*/
#include "CLuaShim.h"
#include "SandboxInternal.h"
#include <ctype.h>
#include <string.h>

#define PAT_MAXCAPTURES 32
#define PAT_MAXDEPTH 200
#define PAT_UNFINISHED (-1)
#define PAT_POSITION (-2)
#define PAT_SPECIALS "^$*+?.([%-"
#define PAT_CHARGE_EVERY 256

typedef struct {
    const char *src_init, *src_end, *p_end;
    lua_State *L;
    int depth;
    int level;
    long steps;
    struct {
        const char *init;
        ptrdiff_t len;
    } capture[PAT_MAXCAPTURES];
} pmatch;

static void pat_step(pmatch *m) {
    if (++m->steps >= PAT_CHARGE_EVERY) {
        long n = m->steps;
        m->steps = 0;
        tycho_sandbox_charge(m->L, n);
    }
}

static void pat_prepare(pmatch *m, lua_State *L, const char *s, size_t ls, const char *p, size_t lp) {
    m->L = L;
    m->src_init = s;
    m->src_end = s + ls;
    m->p_end = p + lp;
    m->steps = 0;
}

static void pat_reset(pmatch *m) {
    m->level = 0;
    m->depth = PAT_MAXDEPTH;
}

/* MARK: classes and sets */

static int pat_class(int c, int cl) {
    int res;
    switch (tolower(cl)) {
    case 'a': res = isalpha(c); break;
    case 'c': res = iscntrl(c); break;
    case 'd': res = isdigit(c); break;
    case 'g': res = isgraph(c); break;
    case 'l': res = islower(c); break;
    case 'p': res = ispunct(c); break;
    case 's': res = isspace(c); break;
    case 'u': res = isupper(c); break;
    case 'w': res = isalnum(c); break;
    case 'x': res = isxdigit(c); break;
    default: return cl == c;
    }
    if (isupper(cl)) res = !res;
    return res != 0;
}

/* The end of the single-character class starting at p (one past it). */
static const char *pat_class_end(pmatch *m, const char *p) {
    char c = *p++;
    if (c == '%') {
        if (p == m->p_end) luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c == '[') {
        if (*p == '^') p++;
        do { /* the first character of a set is itself even when it is ']' */
            if (p == m->p_end) luaL_error(m->L, "malformed pattern (missing ']')");
            if (*(p++) == '%' && p < m->p_end) p++;
        } while (*p != ']');
        return p + 1;
    }
    return p;
}

/* Does c belong to the set [ ... ] that starts at p ('[') and ends at ec (']')? */
static int pat_set(int c, const char *p, const char *ec) {
    int negate = 0;
    if (*(p + 1) == '^') {
        negate = 1;
        p++;
    }
    while (++p < ec) {
        if (*p == '%') {
            p++;
            if (pat_class(c, (unsigned char)*p)) return !negate;
        } else if (*(p + 1) == '-' && p + 2 < ec) {
            p += 2;
            if ((unsigned char)*(p - 2) <= c && c <= (unsigned char)*p) return !negate;
        } else if ((unsigned char)*p == c) {
            return !negate;
        }
    }
    return negate;
}

static int pat_single(pmatch *m, const char *s, const char *p, const char *ep) {
    if (s >= m->src_end) return 0;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.': return 1;
    case '%': return pat_class(c, (unsigned char)*(p + 1));
    case '[': return pat_set(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

/* MARK: the matcher */

static const char *pat_match(pmatch *m, const char *s, const char *p);

static const char *pat_balance(pmatch *m, const char *s, const char *p) {
    if (p + 1 >= m->p_end) luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= m->src_end || *s != *p) return NULL;
    int open = *p, close = *(p + 1), depth = 1;
    while (++s < m->src_end) {
        pat_step(m);
        if (*s == close) {
            if (--depth == 0) return s + 1;
        } else if (*s == open) {
            depth++;
        }
    }
    return NULL;
}

static const char *pat_max_expand(pmatch *m, const char *s, const char *p, const char *ep) {
    ptrdiff_t i = 0;
    while (pat_single(m, s + i, p, ep)) {
        i++;
        pat_step(m);
    }
    while (i >= 0) { /* try the longest repetition first */
        const char *res = pat_match(m, s + i, ep + 1);
        if (res) return res;
        i--;
    }
    return NULL;
}

static const char *pat_min_expand(pmatch *m, const char *s, const char *p, const char *ep) {
    for (;;) {
        const char *res = pat_match(m, s, ep + 1);
        if (res != NULL) return res;
        if (!pat_single(m, s, p, ep)) return NULL;
        s++;
    }
}

static const char *pat_start_capture(pmatch *m, const char *s, const char *p, int what) {
    int level = m->level;
    if (level >= PAT_MAXCAPTURES) luaL_error(m->L, "too many captures");
    m->capture[level].init = s;
    m->capture[level].len = what;
    m->level = level + 1;
    const char *res = pat_match(m, s, p);
    if (res == NULL) m->level--;
    return res;
}

static const char *pat_end_capture(pmatch *m, const char *s, const char *p) {
    int l = -1;
    for (int k = m->level - 1; k >= 0; k--) {
        if (m->capture[k].len == PAT_UNFINISHED) {
            l = k;
            break;
        }
    }
    if (l < 0) luaL_error(m->L, "invalid pattern capture");
    m->capture[l].len = s - m->capture[l].init;
    const char *res = pat_match(m, s, p);
    if (res == NULL) m->capture[l].len = PAT_UNFINISHED;
    return res;
}

static int pat_capture_index(pmatch *m, int l) {
    l -= '1';
    if (l < 0 || l >= m->level || m->capture[l].len == PAT_UNFINISHED)
        return luaL_error(m->L, "invalid capture index %%%d", l + 1);
    return l;
}

static const char *pat_back_reference(pmatch *m, const char *s, int l) {
    l = pat_capture_index(m, l);
    size_t len = (size_t)m->capture[l].len;
    if ((size_t)(m->src_end - s) >= len && memcmp(m->capture[l].init, s, len) == 0) return s + len;
    return NULL;
}

static const char *pat_match(pmatch *m, const char *s, const char *p) {
    if (m->depth-- == 0) luaL_error(m->L, "pattern too complex");
    pat_step(m);
    while (p != m->p_end && s != NULL) {
        const char *ep;
        switch (*p) {
        case '(':
            s = *(p + 1) == ')' ? pat_start_capture(m, s, p + 2, PAT_POSITION) : pat_start_capture(m, s, p + 1, PAT_UNFINISHED);
            goto done;
        case ')':
            s = pat_end_capture(m, s, p + 1);
            goto done;
        case '$':
            if (p + 1 != m->p_end) goto single; /* '$' elsewhere is itself */
            s = s == m->src_end ? s : NULL;
            goto done;
        case '%':
            switch (*(p + 1)) {
            case 'b':
                s = pat_balance(m, s, p + 2);
                if (s != NULL) p += 4;
                continue;
            case 'f': {
                p += 2;
                if (*p != '[') luaL_error(m->L, "missing '[' after '%%f' in pattern");
                ep = pat_class_end(m, p);
                int prev = s == m->src_init ? '\0' : (unsigned char)*(s - 1);
                int cur = s < m->src_end ? (unsigned char)*s : '\0';
                if (!pat_set(prev, p, ep - 1) && pat_set(cur, p, ep - 1)) {
                    p = ep;
                    continue;
                }
                s = NULL;
                goto done;
            }
            case '0': case '1': case '2': case '3': case '4':
            case '5': case '6': case '7': case '8': case '9':
                s = pat_back_reference(m, s, (unsigned char)*(p + 1));
                if (s != NULL) p += 2;
                continue;
            default:
                goto single;
            }
        default:
        single:
            ep = pat_class_end(m, p);
            if (!pat_single(m, s, p, ep)) {
                if (*ep == '*' || *ep == '?' || *ep == '-') { /* zero repetitions are a match */
                    p = ep + 1;
                    continue;
                }
                s = NULL;
                goto done;
            }
            switch (*ep) {
            case '?': {
                const char *res = pat_match(m, s + 1, ep + 1);
                if (res != NULL) {
                    s = res;
                    goto done;
                }
                p = ep + 1;
                continue;
            }
            case '+': s = pat_max_expand(m, s + 1, p, ep); goto done;
            case '*': s = pat_max_expand(m, s, p, ep); goto done;
            case '-': s = pat_min_expand(m, s, p, ep); goto done;
            default:
                s++;
                p = ep;
                continue;
            }
        }
    }
done:
    m->depth++;
    return s;
}

/* MARK: captures */

/* Pushes capture i (the whole match s..e when there are no captures and i is 0). */
static void pat_push_capture(pmatch *m, int i, const char *s, const char *e) {
    if (i >= m->level) {
        if (i != 0) luaL_error(m->L, "invalid capture index %%%d", i + 1);
        lua_pushlstring(m->L, s, (size_t)(e - s));
        return;
    }
    ptrdiff_t len = m->capture[i].len;
    if (len == PAT_UNFINISHED) luaL_error(m->L, "unfinished capture");
    if (len == PAT_POSITION)
        lua_pushinteger(m->L, (lua_Integer)(m->capture[i].init - m->src_init) + 1);
    else
        lua_pushlstring(m->L, m->capture[i].init, (size_t)len);
}

static int pat_push_captures(pmatch *m, const char *s, const char *e) {
    int n = (m->level == 0 && s) ? 1 : m->level;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++) pat_push_capture(m, i, s, e);
    return n;
}

/* MARK: the library functions */

static size_t pat_start(lua_Integer pos, size_t len) {
    if (pos > 0) return (size_t)pos;
    if (pos == 0) return 1;
    if (pos < -(lua_Integer)len) return 1;
    return len + (size_t)pos + 1;
}

static int pat_plain(const char *p, size_t lp) {
    for (size_t i = 0; i < lp; i++)
        if (p[i] != '\0' && strchr(PAT_SPECIALS, p[i])) return 0;
    return 1;
}

static const char *pat_memfind(lua_State *L, const char *s1, size_t l1, const char *s2, size_t l2) {
    if (l2 == 0) return s1;
    if (l2 > l1) return NULL;
    const char *init;
    l2--;
    l1 = l1 - l2;
    while (l1 > 0 && (init = (const char *)memchr(s1, *s2, l1)) != NULL) {
        tycho_sandbox_charge(L, 1 + (long)(l2 / 64));
        init++;
        if (memcmp(init, s2 + 1, l2) == 0) return init - 1;
        l1 -= (size_t)(init - s1);
        s1 = init;
    }
    return NULL;
}

static int pat_find_aux(lua_State *L, int find) {
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = pat_start(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || pat_plain(p, lp))) {
        const char *found = pat_memfind(L, s + init, ls - init, p, lp);
        if (found) {
            lua_pushinteger(L, (lua_Integer)(found - s) + 1);
            lua_pushinteger(L, (lua_Integer)(found - s + lp));
            return 2;
        }
    } else {
        pmatch m;
        const char *s1 = s + init;
        int anchor = *p == '^';
        if (anchor) {
            p++;
            lp--;
        }
        pat_prepare(&m, L, s, ls, p, lp);
        do {
            pat_reset(&m);
            const char *res = pat_match(&m, s1, p);
            if (res != NULL) {
                if (find) {
                    lua_pushinteger(L, (lua_Integer)(s1 - s) + 1);
                    lua_pushinteger(L, (lua_Integer)(res - s));
                    return pat_push_captures(&m, NULL, 0) + 2;
                }
                return pat_push_captures(&m, s1, res);
            }
        } while (s1++ < m.src_end && !anchor);
    }
    luaL_pushfail(L);
    return 1;
}

static int sandbox_find(lua_State *L) { return pat_find_aux(L, 1); }
static int sandbox_match(lua_State *L) { return pat_find_aux(L, 0); }

typedef struct {
    const char *src, *p, *lastmatch;
    pmatch m;
} pat_gmatch_state;

static int sandbox_gmatch_step(lua_State *L) {
    pat_gmatch_state *gm = (pat_gmatch_state *)lua_touserdata(L, lua_upvalueindex(3));
    gm->m.L = L;
    for (const char *src = gm->src; src <= gm->m.src_end; src++) {
        pat_reset(&gm->m);
        const char *e = pat_match(&gm->m, src, gm->p);
        if (e != NULL && e != gm->lastmatch) {
            gm->src = gm->lastmatch = e;
            return pat_push_captures(&gm->m, src, e);
        }
    }
    return 0;
}

static int sandbox_gmatch(lua_State *L) {
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = pat_start(luaL_optinteger(L, 3, 1), ls) - 1;
    lua_settop(L, 2); /* the subject and the pattern stay alive as upvalues */
    pat_gmatch_state *gm = (pat_gmatch_state *)lua_newuserdatauv(L, sizeof(pat_gmatch_state), 0);
    if (init > ls) init = ls + 1;
    pat_prepare(&gm->m, L, s, ls, p, lp);
    gm->src = s + init;
    gm->p = p;
    gm->lastmatch = NULL;
    lua_pushcclosure(L, sandbox_gmatch_step, 3);
    return 1;
}

/* Appends the replacement string (argument 3) with %0-%9 and %% expanded. */
static void pat_add_string(pmatch *m, luaL_Buffer *b, const char *s, const char *e) {
    lua_State *L = m->L;
    size_t l;
    const char *news = lua_tolstring(L, 3, &l);
    const char *p;
    while ((p = (const char *)memchr(news, '%', l)) != NULL) {
        luaL_addlstring(b, news, (size_t)(p - news));
        p++;
        if (*p == '%') {
            luaL_addchar(b, *p);
        } else if (*p == '0') {
            luaL_addlstring(b, s, (size_t)(e - s));
        } else if (isdigit((unsigned char)*p)) {
            pat_push_capture(m, *p - '1', s, e);
            luaL_addvalue(b); /* a string, or a position as a number */
        } else {
            luaL_error(L, "invalid use of '%c' in replacement string", '%');
        }
        l -= (size_t)(p + 1 - news);
        news = p + 1;
    }
    luaL_addlstring(b, news, l);
}

/* Appends the replacement for the match s..e; returns whether the text changed. */
static int pat_add_value(pmatch *m, luaL_Buffer *b, const char *s, const char *e, int tr) {
    lua_State *L = m->L;
    if (tr == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = pat_push_captures(m, s, e);
        lua_call(L, n, 1);
    } else if (tr == LUA_TTABLE) {
        pat_push_capture(m, 0, s, e);
        lua_gettable(L, 3);
    } else {
        pat_add_string(m, b, s, e);
        return 1;
    }
    if (!lua_toboolean(L, -1)) { /* nil or false: keep the original text */
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
        return 0;
    }
    if (!lua_isstring(L, -1)) return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return 1;
}

static int sandbox_gsub(lua_State *L) {
    size_t srcl, lp;
    const char *src = luaL_checklstring(L, 1, &srcl);
    const char *p = luaL_checklstring(L, 2, &lp);
    const char *lastmatch = NULL;
    int tr = lua_type(L, 3);
    lua_Integer max_s = luaL_optinteger(L, 4, (lua_Integer)srcl + 1);
    int anchor = *p == '^';
    lua_Integer n = 0;
    int changed = 0;
    pmatch m;
    luaL_Buffer b;
    luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
                     "string/function/table");
    luaL_buffinit(L, &b);
    if (anchor) {
        p++;
        lp--;
    }
    pat_prepare(&m, L, src, srcl, p, lp);
    while (n < max_s) {
        pat_reset(&m);
        const char *e = pat_match(&m, src, p);
        if (e != NULL && e != lastmatch) {
            n++;
            changed = pat_add_value(&m, &b, src, e, tr) | changed;
            src = lastmatch = e;
        } else if (src < m.src_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchor) break;
    }
    if (!changed) {
        lua_pushvalue(L, 1);
    } else {
        luaL_addlstring(&b, src, (size_t)(m.src_end - src));
        luaL_pushresult(&b);
    }
    lua_pushinteger(L, n);
    return 2;
}

void tycho_sandbox_open_patterns(lua_State *L) {
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushcfunction(L, sandbox_find);
    lua_setfield(L, -2, "find");
    lua_pushcfunction(L, sandbox_match);
    lua_setfield(L, -2, "match");
    lua_pushcfunction(L, sandbox_gmatch);
    lua_setfield(L, -2, "gmatch");
    lua_pushcfunction(L, sandbox_gsub);
    lua_setfield(L, -2, "gsub");
    lua_pop(L, 1);
}
