/** A small nginx configuration reader: enough to classify server blocks (pure). */

export interface Directive {
    name: string;
    args: string[];
    block?: Directive[];
}

function tokenize(text: string): string[] {
    const tokens: string[] = [];
    let i = 0;
    while (i < text.length) {
        const ch = text[i];
        if (/\s/.test(ch)) { i++; continue; }
        if (ch === "#") { while (i < text.length && text[i] !== "\n") i++; continue; }
        if (ch === "{" || ch === "}" || ch === ";") { tokens.push(ch); i++; continue; }
        if (ch === "\"" || ch === "'") {
            let j = i + 1;
            let s = "";
            while (j < text.length && text[j] !== ch) {
                if (text[j] === "\\" && j + 1 < text.length) { s += text[j + 1]; j += 2; continue; }
                s += text[j++];
            }
            tokens.push(s);
            i = j + 1;
            continue;
        }
        let j = i;
        while (j < text.length && !/\s/.test(text[j]) && !"{};".includes(text[j])) j++;
        tokens.push(text.slice(i, j));
        i = j;
    }
    return tokens;
}

/** Parses nginx configuration text into a directive tree (lenient: unbalanced input is truncated). */
export function parseNginx(text: string): Directive[] {
    const tokens = tokenize(text);
    let pos = 0;
    const parseBlock = (): Directive[] => {
        const out: Directive[] = [];
        let current: string[] = [];
        while (pos < tokens.length) {
            const t = tokens[pos++];
            if (t === "}") return out;
            if (t === ";") {
                if (current.length) out.push({ name: current[0], args: current.slice(1) });
                current = [];
            } else if (t === "{") {
                const block = parseBlock();
                if (current.length) out.push({ name: current[0], args: current.slice(1), block });
                current = [];
            } else {
                current.push(t);
            }
        }
        return out;
    };
    return parseBlock();
}

/** All `server` blocks of the http context (or top level, for conf.d snippets). */
export function serverBlocks(tree: Directive[]): Directive[] {
    const out: Directive[] = [];
    for (const d of tree) {
        if (d.name === "server" && d.block) out.push(d);
        if (d.name === "http" && d.block) out.push(...serverBlocks(d.block));
    }
    return out;
}

function walk(block: Directive[], visit: (d: Directive, inAcme: boolean) => void, inAcme = false): void {
    for (const d of block) {
        visit(d, inAcme);
        if (d.block) {
            const acme = inAcme || (d.name === "location" && d.args.join(" ").includes("/.well-known/acme-challenge"));
            walk(d.block, visit, acme);
        }
    }
}

const CONTENT_DIRECTIVES = ["proxy_pass", "fastcgi_pass", "grpc_pass", "uwsgi_pass", "scgi_pass", "root", "alias", "try_files", "index", "autoindex"];
const WEAK_PROTOCOLS = ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1"];

/** Problems of an nginx configuration against "HTTPS only, plain HTTP only redirects". */
export function nginxTlsProblems(text: string): string[] {
    const tree = parseNginx(text);
    const servers = serverBlocks(tree);
    const problems: string[] = [];
    if (servers.length === 0) return ["no server block found"];
    const httpBlock = tree.find((d) => d.name === "http")?.block ?? [];
    const httpHas = (name: string) => httpBlock.some((d) => d.name === name);
    let sslServers = 0;
    servers.forEach((server, idx) => {
        const body = server.block ?? [];
        const names = body.filter((d) => d.name === "server_name").flatMap((d) => d.args);
        const label = `server #${idx + 1}${names.length ? ` (${names.join(" ")})` : ""}`;
        const listens = body.filter((d) => d.name === "listen");
        const ssl = listens.some((l) => l.args.includes("ssl") || l.args.includes("quic"));
        if (ssl) {
            sslServers++;
            const hasCert = body.some((d) => d.name === "ssl_certificate") || httpHas("ssl_certificate");
            const hasKey = body.some((d) => d.name === "ssl_certificate_key") || httpHas("ssl_certificate_key");
            if (!hasCert || !hasKey) problems.push(`${label} listens with ssl but has no ssl_certificate/ssl_certificate_key`);
            const protocols = [...body, ...httpBlock].filter((d) => d.name === "ssl_protocols").flatMap((d) => d.args);
            const weak = protocols.filter((p) => WEAK_PROTOCOLS.includes(p));
            if (weak.length) problems.push(`${label} enables obsolete protocols ${weak.join(", ")} (use TLSv1.2 TLSv1.3)`);
            return;
        }
        const ports = listens.length ? listens.map((l) => l.args[0]).join(", ") : "80 (default)";
        const redirect = body.some((d) => d.name === "return" && /^30[1278]$/.test(d.args[0] ?? "") && /^https:\/\//.test(d.args[1] ?? ""));
        const serving: string[] = [];
        walk(body, (d, inAcme) => {
            if (!inAcme && CONTENT_DIRECTIVES.includes(d.name)) serving.push(d.name);
            if (!inAcme && d.name === "return" && !(/^30[1278]$/.test(d.args[0] ?? "") && /^https:\/\//.test(d.args[1] ?? ""))) {
                serving.push(`return ${d.args.join(" ")}`);
            }
        });
        if (!redirect) problems.push(`${label} listens on ${ports} without ssl and does not \`return 301 https://...\``);
        if (serving.length) problems.push(`${label} listens on ${ports} without ssl and serves content (${[...new Set(serving)].join(", ")})`);
    });
    if (sslServers === 0) problems.push("no server listens with ssl (HTTPS is not served)");
    return problems;
}
