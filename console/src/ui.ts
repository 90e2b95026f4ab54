// The console's building blocks: elements without a framework, tables that sort and filter,
// SVG charts, and errors shown from their google.rpc details. Text always goes in as text
// (never as HTML), so nothing the platform returns can run in the page.

import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";

import { Code, PlatformError } from "../../sdk/typescript/src/index.js";

type Child = Node | string | number | null | undefined | false;
type Attributes = Record<string, string | number | boolean | EventListener | undefined>;

/** An element with attributes (`on…` ones as listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") element.addEventListener(name.slice(2), value);
    // Through the CSSOM: the page's policy refuses style attributes.
    else if (name === "style") element.style.cssText = String(value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag: string, attributes: Record<string, string | number>, ...children: (Node | string)[]): SVGElement {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

export function time(timestamp?: Timestamp): string {
  if (!timestamp || (timestamp.seconds === 0n && timestamp.nanos === 0)) return "—";
  return timestampDate(timestamp).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** The words of an enum's value, its type's prefix (the words shared by all values) dropped. */
export function enumLabel(names: object, value: number): string {
  const all = Object.entries(names).filter(([, v]) => typeof v === "number") as [string, number][];
  const name = all.find(([, v]) => v === value)?.[0] ?? String(value);
  const words = all.map(([n]) => n.split("_"));
  let shared = 0;
  while (words.every((w) => w.length > shared + 1 && w[shared] === words[0][shared])) shared++;
  return name.split("_").slice(shared).join(" ").toLowerCase();
}

/** A badge whose look follows its meaning (`good`, `bad`, `busy`, `neutral`). */
export function badge(text: string, tone: "good" | "bad" | "busy" | "neutral" = "neutral"): HTMLElement {
  return h("span", { class: `badge ${tone}` }, text);
}

/** An enum value as a badge, its look chosen by which of the groups holds the value. */
export function statusBadge<E extends number>(
  names: object,
  value: E,
  tones: { good?: E[]; bad?: E[]; busy?: E[] },
): HTMLElement {
  const tone = tones.good?.includes(value) ? "good" : tones.bad?.includes(value) ? "bad" : tones.busy?.includes(value) ? "busy" : "neutral";
  return badge(enumLabel(names, value), tone);
}

/** What a failed call says to a person: its message, reason and field violations. */
export function errorBox(error: unknown): HTMLElement {
  const failure = PlatformError.from(error);
  const title =
    failure.code === Code.Unauthenticated
      ? "Not signed in, or the session is no longer valid"
      : failure.code === Code.PermissionDenied
        ? "Not allowed"
        : failure.code === Code.Unimplemented
          ? "Not available yet"
          : failure.code === Code.Unavailable
            ? "The platform cannot be reached"
            : "The request failed";
  return h(
    "div",
    { class: "error", role: "alert" },
    h("strong", {}, title),
    h("p", {}, failure.rawMessage || Code[failure.code]),
    failure.fieldViolations.length > 0 &&
      h("ul", {}, ...failure.fieldViolations.map((v) => h("li", {}, h("code", {}, v.field), `: ${v.description}`))),
    h(
      "p",
      { class: "muted small" },
      `code ${Code[failure.code]}`,
      failure.reason ? ` · reason ${failure.reason}` : "",
      failure.retryAfterMs !== undefined ? ` · retry in ${Math.ceil(failure.retryAfterMs / 1000)} s` : "",
    ),
  );
}

/** Runs `action`, showing its failure in `where` (replacing an earlier one). */
export async function attempt<T>(where: HTMLElement, action: () => Promise<T>): Promise<T | undefined> {
  where.querySelector(":scope > .error")?.remove();
  try {
    return await action();
  } catch (error) {
    where.prepend(errorBox(error));
    return undefined;
  }
}

export interface Column<T> {
  title: string;
  /** The value sorted and filtered on. */
  value: (row: T) => string | number;
  /** How the cell shows; the value as text when absent. */
  render?: (row: T) => Child;
  numeric?: boolean;
}

const PAGE_ROWS = 25;

/** A table that sorts by any column (click or Enter on its header), filters on a text, and
 *  shows its rows a page at a time. */
export function table<T>(caption: string, columns: Column<T>[], rows: T[], empty = "Nothing yet."): HTMLElement {
  let sortBy = -1;
  let ascending = true;
  let filter = "";
  let first = 0;
  const body = h("tbody");
  const count = h("span", { class: "muted small", "aria-live": "polite" });
  const previous = h("button", { type: "button", class: "secondary", onclick: () => move(-PAGE_ROWS) }, "Previous");
  const next = h("button", { type: "button", class: "secondary", onclick: () => move(PAGE_ROWS) }, "Next");
  const headers = columns.map((column, index) =>
    h(
      "th",
      { scope: "col", class: column.numeric ? "num" : "", "aria-sort": "none" },
      h("button", { type: "button", class: "sort", onclick: () => sort(index) }, column.title),
    ),
  );
  function sort(index: number) {
    ascending = sortBy === index ? !ascending : true;
    sortBy = index;
    first = 0;
    headers.forEach((header, i) =>
      header.setAttribute("aria-sort", i === sortBy ? (ascending ? "ascending" : "descending") : "none"),
    );
    draw();
  }
  function move(by: number) {
    first = Math.max(0, first + by);
    draw();
  }
  function draw() {
    const needle = filter.toLowerCase();
    let shown = rows.filter(
      (row) => !needle || columns.some((column) => String(column.value(row)).toLowerCase().includes(needle)),
    );
    if (sortBy >= 0) {
      const column = columns[sortBy];
      shown = [...shown].sort((a, b) => {
        const [x, y] = [column.value(a), column.value(b)];
        const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
        return ascending ? order : -order;
      });
    }
    if (first >= shown.length) first = Math.max(0, Math.floor((shown.length - 1) / PAGE_ROWS) * PAGE_ROWS);
    const page = shown.slice(first, first + PAGE_ROWS);
    body.replaceChildren(
      ...(page.length === 0
        ? [h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, rows.length ? "No row matches." : empty))]
        : page.map((row) =>
            h(
              "tr",
              {},
              ...columns.map((column) =>
                h("td", { class: column.numeric ? "num" : "" }, column.render ? column.render(row) : column.value(row)),
              ),
            ),
          )),
    );
    count.textContent =
      shown.length > PAGE_ROWS
        ? `${first + 1}–${first + page.length} of ${shown.length}${shown.length < rows.length ? ` (${rows.length} in all)` : ""}`
        : `${shown.length} of ${rows.length}`;
    previous.disabled = first === 0;
    next.disabled = first + PAGE_ROWS >= shown.length;
    pager.hidden = shown.length <= PAGE_ROWS;
  }
  const pager = h("span", { class: "pager" }, previous, next);
  const search = h("input", {
    type: "search",
    placeholder: "Filter",
    "aria-label": `Filter ${caption}`,
    oninput: (event: Event) => {
      filter = (event.target as HTMLInputElement).value;
      first = 0;
      draw();
    },
  });
  draw();
  return h(
    "div",
    { class: "table" },
    h("div", { class: "table-tools" }, search, count, pager),
    h("table", {}, h("caption", {}, caption), h("thead", {}, h("tr", {}, ...headers)), body),
  );
}

/** A metric's value as people read it: counts whole, scores to one decimal. */
export function metricValue(value: number): string {
  return Number.isInteger(value) ? value.toLocaleString() : value.toFixed(1);
}

/** Headline scores as cards, every other metric in a table. */
export function metrics(list: { name: string; value: number; unit: string }[]): HTMLElement {
  const scores = list.filter((m) => m.name.endsWith("_score"));
  const others = list.filter((m) => !m.name.endsWith("_score"));
  return h(
    "div",
    {},
    h(
      "div",
      { class: "stats" },
      ...scores.map((m) =>
        h("div", { class: "stat" }, h("span", { class: "stat-label" }, m.name.replace(/_/g, " ")), h("span", { class: "stat-value" }, metricValue(m.value))),
      ),
    ),
    others.length > 0 &&
      h(
        "details",
        { class: "metrics" },
        h("summary", {}, `All metrics (${others.length})`),
        h(
          "dl",
          { class: "metric-list" },
          ...others.flatMap((m) => [h("dt", {}, m.name.replace(/_/g, " ")), h("dd", {}, metricValue(m.value))]),
        ),
      ),
  );
}

export interface Series {
  name: string;
  points: { time: Date; value: number }[];
}

/** A line chart of one or more series over time, with a text alternative. */
export function lineChart(title: string, series: Series[], unit = ""): HTMLElement {
  const width = 640;
  const height = 220;
  const pad = { left: 44, right: 12, top: 12, bottom: 28 };
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return h("p", { class: "muted" }, `${title}: no data points yet.`);
  const times = all.map((p) => p.time.getTime());
  const values = all.map((p) => p.value);
  const [t0, t1] = [Math.min(...times), Math.max(...times)];
  const [v0, v1] = [Math.min(0, ...values), Math.max(...values, 1)];
  const x = (t: number) => pad.left + ((t - t0) / Math.max(t1 - t0, 1)) * (width - pad.left - pad.right);
  const y = (v: number) => height - pad.bottom - ((v - v0) / Math.max(v1 - v0, 1e-9)) * (height - pad.top - pad.bottom);
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = v0 + f * (v1 - v0);
    return svg(
      "g",
      {},
      svg("line", { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: "grid" }),
      svg("text", { x: pad.left - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, v.toFixed(v1 - v0 < 5 ? 1 : 0)),
    );
  });
  const lines = series.map((s, index) =>
    svg("polyline", {
      class: `series s${index % 4}`,
      points: s.points.map((p) => `${x(p.time.getTime()).toFixed(1)},${y(p.value).toFixed(1)}`).join(" "),
    }),
  );
  const dots = series.flatMap((s, index) =>
    s.points.map((p) =>
      svg(
        "circle",
        { cx: x(p.time.getTime()), cy: y(p.value), r: 3, class: `dot s${index % 4}` },
        svg("title", {}, `${s.name} ${p.time.toLocaleDateString()}: ${p.value.toFixed(1)}${unit}`),
      ),
    ),
  );
  const axis = [t0, t1].map((t, i) =>
    svg(
      "text",
      { x: x(t), y: height - 8, "text-anchor": i === 0 ? "start" : "end", class: "axis" },
      new Date(t).toLocaleDateString(),
    ),
  );
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, class: "chart" },
    ...grid,
    ...lines,
    ...dots,
    ...axis,
  );
  const legend = h(
    "ul",
    { class: "legend" },
    ...series.map((s, index) => h("li", {}, h("span", { class: `swatch s${index % 4}` }), s.name)),
  );
  const described = h(
    "details",
    {},
    h("summary", {}, "Data as a table"),
    table(
      title,
      [
        { title: "Series", value: (r: [string, Date, number]) => r[0] },
        { title: "Time", value: (r) => r[1].getTime(), render: (r) => r[1].toLocaleString() },
        { title: `Value${unit ? ` (${unit})` : ""}`, value: (r) => r[2], render: (r) => r[2].toFixed(2), numeric: true },
      ],
      series.flatMap((s) => s.points.map((p) => [s.name, p.time, p.value] as [string, Date, number])),
    ),
  );
  return h("figure", { class: "figure" }, h("figcaption", {}, title), chart, legend, described);
}

/** A heat map of counts: rows × columns, darker for more. */
export function heatMap(
  title: string,
  rowTitle: string,
  rows: string[],
  columnTitle: string,
  columns: string[],
  counts: number[][],
): HTMLElement {
  const max = Math.max(1, ...counts.flat());
  return h(
    "figure",
    { class: "figure" },
    h("figcaption", {}, title),
    h(
      "table",
      { class: "heat" },
      h(
        "thead",
        {},
        h("tr", {}, h("th", { scope: "col" }, `${rowTitle} ↓ / ${columnTitle} →`), ...columns.map((c) => h("th", { scope: "col" }, c))),
      ),
      h(
        "tbody",
        {},
        ...rows.map((row, r) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, row),
            ...columns.map((_, c) =>
              h(
                "td",
                { class: `heat-cell level${Math.ceil((counts[r][c] / max) * 4)}` },
                counts[r][c] > 0 ? String(counts[r][c]) : "",
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

/** A page section with a heading. */
export function section(title: string, ...children: (Child | Child[])[]): HTMLElement {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

/** A form whose submit runs `action` with its fields, showing a failure inside the form. */
export function form(
  name: string,
  fields: HTMLElement[],
  submit: string,
  action: (values: Record<string, string>, form: HTMLFormElement) => Promise<void>,
): HTMLFormElement {
  const button = h("button", { type: "submit" }, submit);
  const element: HTMLFormElement = h(
    "form",
    {
      "aria-label": name,
      onsubmit: async (event: Event) => {
        event.preventDefault();
        const values: Record<string, string> = {};
        new FormData(element).forEach((value, key) => {
          values[key] = String(value);
        });
        button.disabled = true;
        await attempt(element, () => action(values, element));
        button.disabled = false;
      },
    },
    ...fields,
    button,
  );
  return element;
}

/** A labelled input. */
export function field(
  label: string,
  name: string,
  options: { type?: string; value?: string; required?: boolean; autocomplete?: string; placeholder?: string } = {},
): HTMLElement {
  const id = `field-${name}`;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("input", {
      id,
      name,
      type: options.type ?? "text",
      value: options.value,
      required: options.required ?? true,
      autocomplete: options.autocomplete,
      placeholder: options.placeholder,
    }),
  );
}

/** A labelled select of `options` ([value, text]). */
export function choice(label: string, name: string, options: [string, string][]): HTMLElement {
  const id = `field-${name}`;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("select", { id, name }, ...options.map(([value, text]) => h("option", { value }, text))),
  );
}

/** A link to a ServiceNow record, opened outside the console. */
export function recordLink(link?: { display: string; url: string; sysId: string }): Child {
  if (!link) return "—";
  const text = link.display || link.sysId;
  return link.url ? h("a", { href: link.url, target: "_blank", rel: "noopener noreferrer" }, text) : text;
}
