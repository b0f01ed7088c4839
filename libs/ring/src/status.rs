//! Human-readable status page of the ring.

use std::fmt::Write;

use crate::desc::heartbeat_age_ms;
use crate::ring::RingSnapshot;

/// Renders the ring as a self-contained HTML page: one table row per member with its id,
/// zone, state, address, heartbeat age, health, token count and ownership, and a "Forget"
/// button that POSTs the form field `forget=<id>` back to the page's own URL (the HTTP layer
/// then calls [`crate::Ring::forget`]). All text from the store is HTML-escaped.
pub fn render_status_html(title: &str, snap: &RingSnapshot, now_ms: i64) -> String {
    let title = escape_html(title);
    let mut page = String::with_capacity(2048 + snap.instances_count() * 512);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n\
         <style>\n\
         body {{ font-family: sans-serif; margin: 2em; }}\n\
         table {{ border-collapse: collapse; }}\n\
         th, td {{ border: 1px solid #ccc; padding: 0.3em 0.8em; text-align: left; }}\n\
         th {{ background: #eee; }}\n\
         td.num {{ text-align: right; }}\n\
         tr.unhealthy td {{ background: #fdd; }}\n\
         </style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    let _ = writeln!(
        page,
        "<p>{} members, {} healthy, {} tokens, replication factor {}. Snapshot age: {}.</p>",
        snap.instances_count(),
        snap.healthy_count(now_ms),
        snap.tokens_count(),
        snap.replication_factor(),
        format_age(heartbeat_age_ms(snap.taken_at_ms, now_ms)),
    );
    if snap.instances_count() == 0 {
        page.push_str("<p>The ring has no members.</p>\n</body>\n</html>\n");
        return page;
    }
    page.push_str(
        "<table>\n<thead><tr><th>Instance</th><th>Zone</th><th>State</th><th>Address</th>\
         <th>HTTP address</th><th>Last heartbeat</th><th>Healthy</th><th>Tokens</th>\
         <th>Ownership</th><th></th></tr></thead>\n<tbody>\n",
    );
    for member in snap.members() {
        let desc = &member.desc;
        let healthy = snap.is_heartbeat_fresh(desc, now_ms);
        let id = escape_html(&desc.id);
        let _ = writeln!(
            page,
            "<tr class=\"{row_class}\"><td>{id}</td><td>{zone}</td><td>{state}</td><td>{addr}</td>\
             <td>{http_addr}</td><td>{age} ago</td><td>{healthy}</td><td class=\"num\">{tokens}</td>\
             <td class=\"num\">{ownership:.2}%</td>\
             <td><form method=\"post\"><input type=\"hidden\" name=\"forget\" value=\"{id}\">\
             <button type=\"submit\">Forget</button></form></td></tr>",
            row_class = if healthy { "healthy" } else { "unhealthy" },
            zone = escape_html(&desc.zone),
            state = desc.state,
            addr = escape_html(&desc.addr),
            http_addr = escape_html(&desc.http_addr),
            age = format_age(heartbeat_age_ms(desc.heartbeat_ms, now_ms)),
            healthy = if healthy { "yes" } else { "no" },
            tokens = desc.tokens.len(),
            ownership = member.ownership * 100.0,
        );
    }
    page.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    page
}

/// Escapes the characters that are special in HTML text and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

fn format_age(age_ms: i64) -> String {
    let seconds = age_ms / 1000;
    if seconds < 60 {
        return format!("{}.{}s", seconds, (age_ms % 1000) / 100);
    }
    if seconds < 3600 {
        return format!("{}m{}s", seconds / 60, seconds % 60);
    }
    format!("{}h{}m", seconds / 3600, (seconds % 3600) / 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desc::{InstanceDesc, InstanceState};
    use crate::ring::RingConfig;
    use crate::store::Versioned;

    fn member(id: &str, token: u32, heartbeat_ms: i64) -> Versioned<InstanceDesc> {
        Versioned {
            value: InstanceDesc {
                id: id.to_string(),
                addr: "10.0.0.1:9095".to_string(),
                http_addr: "10.0.0.1:9009".to_string(),
                zone: "zone-a".to_string(),
                state: InstanceState::Active,
                tokens: vec![token],
                heartbeat_ms,
                registered_ms: 0,
            },
            version: 1,
        }
    }

    #[test]
    fn page_lists_members_and_escapes() {
        let now = 1_000_000;
        let snap = RingSnapshot::new(
            vec![
                member("ing-1", 1, now - 2_000),
                member("<script>\"x\"", 1 << 31, now - 120_000),
            ],
            &RingConfig::default(),
            now,
        );
        let page = render_status_html("Ingester <ring>", &snap, now);
        assert!(page.contains("<title>Ingester &lt;ring&gt;</title>"));
        assert!(page.contains("<td>ing-1</td>"));
        assert!(page.contains("&lt;script&gt;&quot;x&quot;"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("name=\"forget\" value=\"ing-1\""));
        assert!(page.contains("<td>ACTIVE</td>"));
        assert!(page.contains("2.0s ago"));
        assert!(page.contains("2m0s ago"));
        assert!(page.contains("<td>no</td>"));
        assert!(page.contains("50.00%"));
    }

    #[test]
    fn empty_ring_page() {
        let snap = RingSnapshot::new(Vec::new(), &RingConfig::default(), 0);
        let page = render_status_html("Ring", &snap, 0);
        assert!(page.contains("no members"));
    }
}
