/*
** SandboxInternal.h: what Sandbox.c shares with SandboxPatterns.c (not part of the shim's public header).
*/
#ifndef TYCHO_SANDBOX_INTERNAL_H
#define TYCHO_SANDBOX_INTERNAL_H

#include <lua.h>

/* Charges `steps` instructions to the sandbox's budget (while enforcing); raises when it is spent. */
void tycho_sandbox_charge(lua_State *L, long steps);
/* Replaces string.find, match, gmatch and gsub with the budget-charging versions. */
void tycho_sandbox_open_patterns(lua_State *L);

#endif
