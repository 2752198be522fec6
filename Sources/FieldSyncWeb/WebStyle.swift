// MARK: - WebStyle

/// The look the hub's console and the cadre's app share (one look: the same colours, type,
/// tables, notices, badges, diffs and settling forms); each adds its own rules after these.
/// Served from the site itself: the CSP allows styles from there and nothing inline.
public enum WebStyle {
    public static let base = """
        :root { --ink: #1f2933; --muted: #5f6b77; --line: #d5dbe1; --accent: #8c1c13; --bg: #f6f7f9; --ok: #1e7b34; --warn: #a15c00; --bad: #b3261e; }
        * { box-sizing: border-box; }
        body { margin: 0; font-family: "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif;
               color: var(--ink); background: var(--bg); font-size: 15px; line-height: 1.55; }
        main { max-width: 1320px; margin: 1em auto; padding: 0 1em; }
        h1 { font-size: 1.35em; margin: .3em 0 .7em; }
        h2 { font-size: 1.1em; margin: 1.3em 0 .5em; border-left: 4px solid var(--accent); padding-left: .5em; }
        table { border-collapse: collapse; width: 100%; background: #fff; margin-bottom: 1em; table-layout: auto; }
        th, td { border: 1px solid var(--line); padding: .3em .5em; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
        th { background: #eef1f4; font-weight: 600; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        td.long { white-space: pre-wrap; }
        tr.deleted td { color: var(--muted); text-decoration: line-through; }
        td.winner { background: #fff7e0; }
        .notice { padding: .6em 1em; border-radius: 4px; border: 1px solid; }
        .notice.info { background: #eef4fb; border-color: #b6cce6; }
        .notice.ok { background: #e9f6ec; border-color: #9fd3ab; color: var(--ok); }
        .notice.error { background: #fdecea; border-color: #f2b8b5; color: var(--bad); }
        .notice.warn { background: #fff4e0; border-color: #f0c987; color: var(--warn); }
        .badge { display: inline-block; padding: 0 .5em; border-radius: 3px; font-size: .85em; border: 1px solid; white-space: nowrap; }
        .badge.ok { color: var(--ok); border-color: #9fd3ab; background: #e9f6ec; }
        .badge.warn { color: var(--warn); border-color: #f0c987; background: #fff4e0; }
        .badge.bad { color: var(--bad); border-color: #f2b8b5; background: #fdecea; }
        .badge.off { color: var(--muted); border-color: var(--line); background: #f0f0f0; }
        input, select, textarea, button { font: inherit; }
        input[type=text], input[type=date], select, textarea { padding: .3em .4em; border: 1px solid #aab4be; border-radius: 3px; max-width: 100%; }
        button { cursor: pointer; border: 1px solid #aab4be; background: #fff; border-radius: 3px; padding: .3em .9em; }
        button.primary, a.button.primary { background: var(--accent); color: #fff; border: none; border-radius: 3px; padding: .4em 1.2em; text-decoration: none; display: inline-block; }
        .cards { display: flex; gap: 1em; flex-wrap: wrap; margin-bottom: 1em; }
        .card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .7em 1.1em; min-width: 9em; text-decoration: none; color: var(--ink); }
        .card .n { font-size: 1.5em; font-weight: bold; }
        .card .l { color: var(--muted); font-size: .9em; }
        .pager { display: flex; gap: 1em; align-items: center; }
        .muted { color: var(--muted); }
        .diff { background: #fff; border: 1px solid var(--line); padding: .5em .8em; }
        .diff div { white-space: pre-wrap; overflow-wrap: anywhere; }
        .diff .add { background: #e6f6e9; }
        .diff .add::before { content: "+ "; color: var(--ok); }
        .diff .del { background: #fdecea; text-decoration: line-through; }
        .diff .del::before { content: "− "; color: var(--bad); }
        .diff .same, .diff .fold { color: var(--muted); }
        fieldset.resolve { background: #fff; border: 1px solid var(--line); padding: 1em; }
        fieldset.resolve label.choice { display: block; margin: .3em 0; }
        fieldset.resolve textarea { width: 100%; min-height: 5em; }
        footer { text-align: center; color: var(--muted); font-size: .85em; margin: 2em 0 1em; }
        a { color: #1a5fb4; }
        header.top { display: flex; align-items: center; gap: 1em; background: var(--accent); color: #fff; padding: .5em 1em; flex-wrap: wrap; }
        header.top .brand { font-weight: bold; }
        header.top nav { display: flex; flex-wrap: wrap; gap: .2em; }
        header.top nav a { color: #fde8e6; text-decoration: none; padding: .15em .5em; border-radius: 3px; }
        header.top nav a.here { background: #fff; color: var(--accent); }
        header.top .who { margin-left: auto; font-size: .9em; }
        main.narrow { max-width: 520px; margin-top: 4em; }
        form.filters { display: flex; gap: .6em; flex-wrap: wrap; align-items: end; background: #fff; padding: .6em .8em; border: 1px solid var(--line); margin-bottom: 1em; }
        form.filters label { display: flex; flex-direction: column; font-size: .85em; color: var(--muted); }
        form.filters label.check { flex-direction: row; align-items: center; gap: .3em; color: var(--ink); }
        button.danger { color: var(--bad); border-color: #f2b8b5; }
        form.inline { display: inline; }
        .actions { display: flex; gap: .6em; flex-wrap: wrap; align-items: center; margin: .8em 0; }
        """
}
