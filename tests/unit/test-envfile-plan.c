/* SPDX-License-Identifier: Apache-2.0 */
/* The environment file: interpolation, .env, YAML alias bombs; the plan:
 * references, start order and cycles, reachability, project names, and a
 * real-world style file. */
#include <errno.h>
#include <time.h>

#include "envfile-test-util.h"
#include "tap.h"

static struct moat_plan *plan_of(const char *yaml, const char *project, char **msg)
{
        struct moat_envfile *f = parse_ex(yaml, false, msg);
        if (!f)
                return NULL;
        struct moat_plan *p = NULL;
        struct moat_error *err = NULL;
        int r = moat_plan_build(f, project, test_env, &p, &err);
        if (msg)
                *msg = r < 0 && err ? strdup(err->msg) : NULL;
        moat_error_free(err);
        return r < 0 ? NULL : p;
}

static void test_interpolation(void)
{
        free(warnings());
        _cleanup_envfile_ struct moat_envfile *f =
                parse("services:\n  a:\n    image: \"busybox:${TAG}\"\n    environment:\n"
                      "      - D1=${NOPE:-dflt}\n      - D2=${EMPTY:-dflt}\n      - D3=${EMPTY-dflt}\n"
                      "      - D4=$$HOME\n      - D5=$PORT/x\n      - D6=${TAG:+set}\n      - D7=${NOPE:+set}\n"
                      "      - D8=${NOPE:-${TAG}}\n      - D9=${UNSET_VAR}\n      - D10=cost $5\n");
        ok(f, "interpolation parses");
        if (f) {
                const struct moat_env_service *s = &f->services[0];
                is_str(s->image, "busybox:1.2", "${TAG}");
                is_str(env_of(s, "D1"), "dflt", ":- for unset");
                is_str(env_of(s, "D2"), "dflt", ":- for empty");
                is_str(env_of(s, "D3"), "", "- keeps empty");
                is_str(env_of(s, "D4"), "$HOME", "$$ escapes");
                is_str(env_of(s, "D5"), "8080/x", "$VAR unbraced");
                is_str(env_of(s, "D6"), "set", ":+ when set");
                is_str(env_of(s, "D7"), "", ":+ when unset");
                is_str(env_of(s, "D8"), "1.2", "nested default");
                is_str(env_of(s, "D9"), "", "unset: empty");
                is_str(env_of(s, "D10"), "cost $5", "$ before a digit is kept");
        }
        _cleanup_free_ char *w = warnings();
        contains(w, "variable 'UNSET_VAR' is not set", "an unset variable warns");
        _cleanup_free_ char *m = parse_error("services:\n  a:\n    image: x\n    user: ${NEED:?set NEED please}\n");
        contains(m, "compose.yaml:4: service 'a': 'user': variable 'NEED' is required: set NEED please", ":? error");
        _cleanup_free_ char *m2 = parse_error("services:\n  a:\n    image: \"${TAG\"\n");
        contains(m2, "'image': '${TAG': unterminated '${'", "unterminated ${");
        _cleanup_free_ char *m3 = parse_error("services:\n  a:\n    image: \"${1x}\"\n");
        contains(m3, "invalid variable name", "bad variable name");
        _cleanup_free_ char *m4 = parse_error("services:\n  a:\n    image: x\n    mem_limit: ${MEM:-12xb}\n");
        contains(m4, "compose.yaml:4: service 'a': 'mem_limit': '12xb' is not a size",
                 "an interpolated value is validated after");

        /* .env next to the file; the environment wins over it */
        write_test_file(".env", "# defaults\nIMG=from-dotenv\nTAG=dotenv-tag\nexport PORTX=9090\n");
        _cleanup_envfile_ struct moat_envfile *g =
                parse_ex("services:\n  a:\n    image: ${IMG}:${TAG}\n    ports: [\"${PORTX}:80\"]\n", true, NULL);
        ok(g, ".env parses");
        if (g) {
                is_str(g->services[0].image, "from-dotenv:1.2", ".env fills in; the environment wins");
                is_int(g->services[0].ports[0].host_port, 9090, "export KEY=VALUE in .env");
        }
        char *dotenv_path;
        if (asprintf(&dotenv_path, "%s/.env", test_dir) > 0) {
                unlink(dotenv_path);
                free(dotenv_path);
        }
}

static void test_alias_bomb(void)
{
        /* nine levels of ten: a billion references */
        const char *bomb = "x-a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
                           "x-b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nx-c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                           "x-d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\nx-e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                           "x-f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\nx-g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
                           "x-h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\nx-i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
                           "services:\n  a:\n    image: x\n    command: *i\n";
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        _cleanup_free_ char *m = parse_error(bomb);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        contains(m, "compose.yaml:", "a billion laughs is refused (nested lists are not a command)");
        ok(t1.tv_sec - t0.tv_sec < 10, "quickly (%lds)", (long)(t1.tv_sec - t0.tv_sec));
        /* wide: 300 services each with the same 5000-entry list */
        FILE *ms;
        char *wide = NULL;
        size_t wl = 0;
        if ((ms = open_memstream(&wide, &wl))) {
                fputs("x-p: &p [", ms);
                for (int i = 0; i < 5000; i++)
                        fprintf(ms, "%s\"%d\"", i ? "," : "", 1000 + i);
                fputs("]\nservices:\n", ms);
                for (int i = 0; i < 300; i++)
                        fprintf(ms, "  s%d: {image: x, ports: *p}\n", i);
                fclose(ms);
                clock_gettime(CLOCK_MONOTONIC, &t0);
                _cleanup_free_ char *mw = parse_error(wide);
                clock_gettime(CLOCK_MONOTONIC, &t1);
                contains(mw, "expands to more than", "many references to a big list are refused");
                ok(t1.tv_sec - t0.tv_sec < 10, "quickly (%lds)", (long)(t1.tv_sec - t0.tv_sec));
                free(wide);
        }
        /* an alias bomb through merge keys */
        const char *merge = "x-a: &a {image: x, user: u}\nx-b: &b {<<: [*a, *a, *a, *a, *a, *a, *a, *a]}\n"
                            "x-c: &c {<<: [*b, *b, *b, *b, *b, *b, *b, *b]}\nx-d: &d {<<: [*c, *c, *c, *c, *c, *c, *c, *c]}\n"
                            "x-e: &e {<<: [*d, *d, *d, *d, *d, *d, *d, *d]}\nx-f: &f {<<: [*e, *e, *e, *e, *e, *e, *e, *e]}\n"
                            "x-g: &g {<<: [*f, *f, *f, *f, *f, *f, *f, *f]}\nx-h: &h {<<: [*g, *g, *g, *g, *g, *g, *g, *g]}\n"
                            "services:\n  a:\n    <<: *h\n";
        clock_gettime(CLOCK_MONOTONIC, &t0);
        _cleanup_free_ char *m2 = parse_error(merge);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        contains(m2, "expands to more than", "a merge-key bomb is refused");
        ok(t1.tv_sec - t0.tv_sec < 10, "quickly (%lds)", (long)(t1.tv_sec - t0.tv_sec));
        /* a self-referencing merge */
        _cleanup_free_ char *m3 = parse_error("services:\n  a: &a\n    image: x\n    <<: *a\n");
        ok(strstr(m3, "nest too deep") || strstr(m3, "parsed without error") || strstr(m3, "compose.yaml"),
           "a recursive merge ends: %s", m3);
        /* a sane use of anchors works */
        _cleanup_envfile_ struct moat_envfile *f =
                parse("x-base: &base\n  image: busybox\n  restart: always\nservices:\n  a:\n    <<: *base\n"
                      "  b:\n    <<: *base\n    restart: \"no\"\n");
        ok(f && f->services[0].restart == MOAT_RESTART_ALWAYS && f->services[1].restart == MOAT_RESTART_NO &&
                   !strcmp(f->services[1].image, "busybox"),
           "merge keys: the service's own keys win");
}

static void test_order_cycles(void)
{
        char *msg = NULL;
        _cleanup_plan_ struct moat_plan *p =
                plan_of("services:\n  web:\n    image: x\n    depends_on: [api]\n  api:\n    image: x\n"
                        "    depends_on: [db, cache]\n  db:\n    image: x\n  cache:\n    image: x\n"
                        "  worker:\n    image: x\n    depends_on: [db]\n",
                        "proj", &msg);
        ok(p, "plan builds: %s", msg ? msg : "");
        free(msg);
        if (p) {
                const char *order[5];
                for (size_t i = 0; i < 5; i++)
                        order[i] = p->file->services[p->order[i]].name;
                is_str(order[0], "db", "db first");
                is_str(order[1], "cache", "then cache");
                is_str(order[2], "api", "api after its deps");
                is_str(order[3], "web", "web after api");
                is_str(order[4], "worker", "worker last (file order among equals)");
                is_str(p->project, "proj", "-p project");
                is_int(p->n_networks, 1, "one default network");
                is_str(p->networks[0].full_name, "proj_default", "proj_default");
        }
        char *m = NULL;
        struct moat_plan *q = plan_of("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n"
                                      "    depends_on: [c]\n  c:\n    image: x\n    depends_on: [a]\n",
                                      NULL, &m);
        ok(!q, "a cycle fails");
        contains(m, "cycle: a -> b -> c -> a", "the cycle is named");
        free(m);
        m = NULL;
        q = plan_of("services:\n  a:\n    image: x\n    depends_on: [a]\n", NULL, &m);
        contains(m, "compose.yaml:4: service 'a': 'depends_on': a service cannot depend on itself", "self dependency");
        free(m);
        m = NULL;
        q = plan_of("services:\n  a:\n    image: x\n    depends_on: [ghost]\n", NULL, &m);
        contains(m, "compose.yaml:4: service 'a': 'depends_on': no service 'ghost'", "unknown dependency");
        free(m);
        m = NULL;
        free(warnings());
        q = plan_of("services:\n  a:\n    image: x\n    depends_on:\n      ghost:\n        required: false\n", NULL, &m);
        ok(q && q->order[0] == 0 && q->n_edges == 0, "a missing dependency with required: false is skipped");
        moat_plan_free(q);
        _cleanup_free_ char *w = warnings();
        contains(w, "compose.yaml:5: service 'a': 'depends_on': no service 'ghost' (required: false); ignored",
                 "with a warning");
        q = plan_of("services:\n  a:\n    image: x\n    networks: [nowhere]\n", NULL, &m);
        contains(m, "service 'a': 'networks': 'nowhere' is not declared", "undeclared network");
        free(m);
        m = NULL;
        q = plan_of("services:\n  a:\n    image: x\n    volumes: [\"data:/d\"]\n", NULL, &m);
        contains(m, "compose.yaml:4: service 'a': 'volumes': 'data' is not declared", "undeclared volume");
        free(m);
        m = NULL;
        q = plan_of("services:\n  a:\n    image: x\n    x-moat:\n      allow: [ghost]\n", NULL, &m);
        contains(m, "service 'a': 'x-moat.allow': no service 'ghost'", "allow names an unknown service");
        free(m);
        m = NULL;
        q = plan_of("services:\n  a:\n    image: x\n", "Bad Name", &m);
        contains(m, "'Bad Name' is not a project name", "-p is checked");
        free(m);
        ok(!q, "no plan from bad files");
}

static void test_reachability(void)
{
        const char *yaml = "services:\n  web:\n    image: x\n    depends_on: [api]\n"
                           "  api:\n    image: x\n    depends_on: [db]\n    x-moat:\n      allow: [\"db:5432\", cache]\n"
                           "  db:\n    image: x\n  cache:\n    image: x\n"
                           "  iso:\n    image: x\n    networks: [side]\n    depends_on: [db]\n"
                           "networks:\n  side:\n    internal: true\n";
        char *msg = NULL;
        _cleanup_plan_ struct moat_plan *p = plan_of(yaml, "r", &msg);
        ok(p, "plan builds: %s", msg ? msg : "");
        free(msg);
        if (!p)
                return;
        size_t web = 0, api = 1, db = 2, cache = 3, iso = 4;
        ok(moat_plan_can_reach(p, web, api, 80), "web -> api (depends_on, any port)");
        ok(!moat_plan_can_reach(p, web, db, 5432), "web -/-> db (not declared)");
        ok(!moat_plan_can_reach(p, api, web, 80), "api -/-> web (edges have a direction)");
        ok(moat_plan_can_reach(p, api, db, 5432), "api -> db:5432 (allow)");
        ok(!moat_plan_can_reach(p, api, db, 22), "api -/-> db:22 (allow names the ports)");
        ok(moat_plan_can_reach(p, api, cache, 6379), "api -> cache (allow, any port)");
        ok(!moat_plan_can_reach(p, db, api, 0), "db reaches nobody");
        ok(!moat_plan_can_reach(p, iso, db, 0), "depends_on without a shared network: order only");
        is_int(p->n_networks, 2, "side + default");
        ok(moat_plan_service_on(p, iso, "side") && !moat_plan_service_on(p, iso, "default"), "iso on side only");
        ok(p->networks[0].internal, "side is internal");

        /* policy: open: everything sharing a network */
        _cleanup_free_ char *open = NULL;
        if (asprintf(&open, "x-moat:\n  policy: open\n%s", yaml) < 0)
                return;
        _cleanup_plan_ struct moat_plan *o = plan_of(open, "r", NULL);
        ok(o, "open plan builds");
        if (o) {
                ok(moat_plan_can_reach(o, web, db, 5432), "open: web -> db");
                ok(moat_plan_can_reach(o, db, web, 80), "open: db -> web");
                ok(moat_plan_can_reach(o, api, db, 22), "open: any port");
                ok(!moat_plan_can_reach(o, iso, db, 0), "open: no shared network, no reach");
                ok(!moat_plan_can_reach(o, web, web, 0), "no self edge");
        }
        char *m = NULL;
        struct moat_plan *bad = plan_of("services:\n  a:\n    image: x\n    networks: [n1]\n    x-moat:\n      allow: [b]\n"
                                        "  b:\n    image: x\n    networks: [n2]\nnetworks:\n  n1:\n  n2:\n",
                                        NULL, &m);
        ok(!bad, "allow across networks fails");
        contains(m, "'x-moat.allow': 'b' is on no network of 'a'", "and says so");
        free(m);
}

static void test_project_names(void)
{
        static const struct { const char *in, *want; } dirs[] = {
                { "My App", "myapp" }, { "demo", "demo" }, { "_x.Y-z", "xy-z" }, { "Proj_1", "proj_1" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
                char *out = NULL;
                int r = moat_project_name(dirs[i].in, false, &out, NULL);
                ok(r == 0 && out && !strcmp(out, dirs[i].want), "dir '%s' -> '%s' (%s)", dirs[i].in, dirs[i].want,
                   out ? out : "error");
                free(out);
        }
        char *out = NULL;
        struct moat_error *err = NULL;
        ok(moat_project_name("...", false, &out, &err) < 0, "a name with nothing usable fails");
        contains(err ? err->msg : NULL, "give one with -p NAME", "and suggests -p");
        moat_error_free(err);
        ok(moat_project_name("-x", true, &out, NULL) < 0, "strict: must start with a letter or digit");

        /* the default comes from the directory (here: moat-envfile-XXXXXX), else name: */
        _cleanup_plan_ struct moat_plan *p = plan_of("services:\n  a:\n    image: x\n", NULL, NULL);
        ok(p && !strncmp(p->project, "moat-envfile-", 13), "default project: the dir name lowercased (%s)",
           p ? p->project : "-");
        _cleanup_plan_ struct moat_plan *q = plan_of("name: named\nservices:\n  a:\n    image: x\n", NULL, NULL);
        ok(q && !strcmp(q->project, "named"), "top-level name:");
        _cleanup_plan_ struct moat_plan *r = plan_of("name: named\nservices:\n  a:\n    image: x\n", "given", NULL);
        ok(r && !strcmp(r->project, "given"), "-p wins over name:");
}

static const char realworld[] =
        "name: shop\n"
        "x-defaults: &defaults\n"
        "  restart: unless-stopped\n"
        "  read_only: true\n"
        "  cap_drop: [ALL]\n"
        "services:\n"
        "  web:\n"
        "    <<: *defaults\n"
        "    image: nginx:1.25\n"
        "    ports: [\"80:80\", \"443:443\"]\n"
        "    volumes:\n"
        "      - ./nginx.conf:/etc/nginx/nginx.conf:ro\n"
        "    tmpfs: [/var/cache/nginx, /run]\n"
        "    depends_on:\n"
        "      api:\n"
        "        condition: service_healthy\n"
        "    networks: [front]\n"
        "    healthcheck:\n"
        "      test: [\"CMD\", \"wget\", \"-q\", \"--spider\", \"http://localhost/\"]\n"
        "      interval: 10s\n"
        "  api:\n"
        "    <<: *defaults\n"
        "    image: \"shop/api:${TAG:-latest}\"\n"
        "    env_file: [api.env]\n"
        "    environment:\n"
        "      DATABASE_URL: postgres://shop@db:5432/shop\n"
        "      REDIS_URL: redis://cache:6379\n"
        "    depends_on:\n"
        "      db:\n"
        "        condition: service_healthy\n"
        "      cache:\n"
        "        condition: service_started\n"
        "    networks: [front, back]\n"
        "    healthcheck:\n"
        "      test: curl -fsS http://localhost:8000/health || exit 1\n"
        "      interval: 15s\n"
        "      timeout: 3s\n"
        "      retries: 5\n"
        "      start_period: 20s\n"
        "    deploy:\n"
        "      resources:\n"
        "        limits: {memory: 512m, cpus: \"1.0\", pids: 200}\n"
        "    x-moat:\n"
        "      allow: [\"db:5432\", \"cache:6379\"]\n"
        "      egress: [\"api.stripe.com:443\"]\n"
        "      on-violation: stop\n"
        "  db:\n"
        "    image: postgres:16\n"
        "    environment:\n"
        "      - POSTGRES_USER=shop\n"
        "      - POSTGRES_PASSWORD_FILE=/run/secrets/pw\n"
        "    volumes: [\"dbdata:/var/lib/postgresql/data\"]\n"
        "    networks: [back]\n"
        "    healthcheck:\n"
        "      test: [\"CMD-SHELL\", \"pg_isready -U shop\"]\n"
        "      interval: 5s\n"
        "    mem_limit: 1g\n"
        "    shm_size: 128m\n"
        "  cache:\n"
        "    image: redis:7\n"
        "    command: redis-server --save \"\" --appendonly no\n"
        "    networks: [back]\n"
        "    healthcheck:\n"
        "      test: redis-cli ping\n"
        "    pids_limit: 64\n"
        "  worker:\n"
        "    <<: *defaults\n"
        "    image: \"shop/api:${TAG:-latest}\"\n"
        "    command: [\"python\", \"-m\", \"worker\"]\n"
        "    env_file: api.env\n"
        "    depends_on: [db, cache]\n"
        "    networks: [back]\n"
        "    restart: on-failure:5\n"
        "  migrate:\n"
        "    image: \"shop/api:${TAG:-latest}\"\n"
        "    command: python -m migrate\n"
        "    depends_on:\n"
        "      db: {condition: service_healthy}\n"
        "    networks: [back]\n"
        "    restart: \"no\"\n"
        "networks:\n"
        "  front:\n"
        "  back:\n"
        "    internal: true\n"
        "volumes:\n"
        "  dbdata:\n";

static void test_realworld(void)
{
        write_test_file("api.env", "SECRET_KEY=abc\nDEBUG=0\n");
        free(warnings());
        char *msg = NULL;
        _cleanup_plan_ struct moat_plan *p = plan_of(realworld, NULL, &msg);
        ok(p, "the real-world file plans: %s", msg ? msg : "");
        free(msg);
        if (!p)
                return;
        _cleanup_free_ char *w = warnings();
        contains(w, "'shm_size' is not supported", "shm_size warns");
        is_str(p->project, "shop", "project from name:");
        is_int(p->file->n_services, 6, "six services");
        const struct moat_env_service *api = moat_envfile_service(p->file, "api");
        const struct moat_env_service *web = moat_envfile_service(p->file, "web");
        const struct moat_env_service *cache = moat_envfile_service(p->file, "cache");
        is_str(api->image, "shop/api:1.2", "TAG from the environment");
        is_str(env_of(api, "SECRET_KEY"), "abc", "env_file");
        is_str(env_of(api, "REDIS_URL"), "redis://cache:6379", "environment");
        is_int(api->memory, 512 << 20, "api memory");
        is_int(api->pids, 200, "api pids");
        is_int(api->restart, MOAT_RESTART_UNLESS_STOPPED, "restart from the merged defaults");
        ok(web->read_only && web->n_ports == 2 && web->n_mounts == 3, "web: read_only, 2 ports, 1 bind + 2 tmpfs");
        is_int(strv_length(cache->command), 5, "redis command split with an empty word");
        is_str(cache->command[2], "", "the empty word \"\"");
        ssize_t iw = moat_plan_service_index(p, "web"), ia = moat_plan_service_index(p, "api"),
                idb = moat_plan_service_index(p, "db"), ic = moat_plan_service_index(p, "cache"),
                iwk = moat_plan_service_index(p, "worker"), im = moat_plan_service_index(p, "migrate");
        ok(moat_plan_can_reach(p, iw, ia, 8000), "web -> api");
        ok(!moat_plan_can_reach(p, iw, idb, 5432), "web -/-> db (and no shared network)");
        ok(moat_plan_can_reach(p, ia, idb, 5432) && !moat_plan_can_reach(p, ia, idb, 22), "api -> db:5432 only");
        ok(moat_plan_can_reach(p, ia, ic, 6379), "api -> cache:6379");
        ok(moat_plan_can_reach(p, iwk, idb, 5432) && moat_plan_can_reach(p, iwk, ic, 6379), "worker -> db, cache");
        ok(moat_plan_can_reach(p, im, idb, 5432) && !moat_plan_can_reach(p, im, ic, 6379), "migrate -> db only");
        ok(!moat_plan_can_reach(p, idb, ia, 0) && !moat_plan_can_reach(p, ic, iwk, 0), "db and cache reach nobody");
        /* order: db and cache before api, api before web */
        size_t pos[6];
        for (size_t i = 0; i < 6; i++)
                pos[p->order[i]] = i;
        ok(pos[idb] < pos[ia] && pos[ic] < pos[ia] && pos[ia] < pos[iw] && pos[idb] < pos[im], "start order");
        is_int(p->n_networks, 2, "front and back (no default: every service names its networks)");
}

int main(void)
{
        envtest_setup();
        test_interpolation();
        test_alias_bomb();
        test_order_cycles();
        test_reachability();
        test_project_names();
        test_realworld();
        envtest_cleanup();
        return done_testing();
}
