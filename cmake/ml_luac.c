/* Build tool: compiles Lua files to bytecode with the very liblua the binary
 * links, so the embedded modules load without being parsed at every start.
 *   ml_luac ROOT OUTDIR FILE...   FILE relative to ROOT; writes
 *   OUTDIR/FILE.luac, with debug info and "@FILE" as the chunk name (error
 *   messages and tracebacks read as they do from source). */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int write_chunk(lua_State *L, const void *p, size_t n, void *ud) {
  (void)L;
  return fwrite(p, 1, n, ud) == n ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: ml_luac ROOT OUTDIR FILE...\n");
    return 2;
  }
  lua_State *L = luaL_newstate();
  if (!L) return 1;
  int rc = 0;
  for (int i = 3; i < argc && rc == 0; i++) {
    char src[4096], out[4096], name[4096];
    snprintf(src, sizeof src, "%s/%s", argv[1], argv[i]);
    snprintf(out, sizeof out, "%s/%s.luac", argv[2], argv[i]);
    snprintf(name, sizeof name, "@%s", argv[i]);
    FILE *in = fopen(src, "rb");
    if (!in) {
      perror(src);
      rc = 1;
      break;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) luaL_addlstring(&b, buf, n);
    fclose(in);
    luaL_pushresult(&b);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    if (luaL_loadbufferx(L, text, len, name, "t") != LUA_OK) {
      fprintf(stderr, "%s\n", lua_tostring(L, -1));
      rc = 1;
      break;
    }
    /* Make the directory chain of `out` (FILE may be nested); existing
     * directories are fine, anything else shows at fopen. */
    for (char *p = out + 1; (p = strchr(p, '/')); p++) {
      *p = '\0';
      mkdir(out, 0777);
      *p = '/';
    }
    FILE *f = fopen(out, "wb");
    int dumped = f && lua_dump(L, write_chunk, f, 0) == 0;
    if ((f && fclose(f) != 0) || !dumped) {
      perror(out);
      rc = 1;
    }
    lua_settop(L, 0);
  }
  lua_close(L);
  return rc;
}
