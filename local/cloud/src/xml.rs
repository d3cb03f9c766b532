//! Just enough XML reading for the answers of moto's Query and restXml APIs.

use std::collections::HashMap;

use quick_xml::Reader;
use quick_xml::events::Event;

/// The text of every element named `name`, in document order.
pub fn texts_of(xml: &str, name: &str) -> Vec<String> {
    blocks(xml, name)
        .into_iter()
        .filter_map(|block| block.own_text)
        .collect()
}

/// The first text of an element named `name`.
pub fn first_text(xml: &str, name: &str) -> Option<String> {
    texts_of(xml, name).into_iter().next()
}

/// One element: its own text, and the first text of each element nested in it.
#[derive(Debug, Default)]
pub struct Block {
    pub own_text: Option<String>,
    pub children: HashMap<String, String>,
}

/// Every element named `name` (not nested in another of the same name).
pub fn blocks(xml: &str, name: &str) -> Vec<Block> {
    let mut reader = Reader::from_str(xml);
    let mut found = Vec::new();
    let mut current: Option<Block> = None;
    // Element names open inside the current block, innermost last.
    let mut open: Vec<String> = Vec::new();
    let mut text = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(start)) => {
                let local = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                if current.is_none() {
                    if local == name {
                        current = Some(Block::default());
                        open.clear();
                        text.clear();
                    }
                } else {
                    open.push(local);
                    text.clear();
                }
            }
            Ok(Event::End(_)) => {
                if let Some(block) = current.as_mut() {
                    match open.pop() {
                        Some(child) => {
                            if !text.is_empty() {
                                block.children.entry(child).or_insert_with(|| text.clone());
                            }
                        }
                        None => {
                            if !text.is_empty() && block.children.is_empty() {
                                block.own_text = Some(text.clone());
                            }
                            if let Some(done) = current.take() {
                                found.push(done);
                            }
                        }
                    }
                    text.clear();
                }
            }
            Ok(Event::Text(chunk)) => {
                if current.is_some()
                    && let Ok(decoded) = chunk.decode()
                {
                    text.push_str(decoded.trim());
                }
            }
            Ok(Event::GeneralRef(reference)) => {
                if current.is_some()
                    && let Ok(name) = reference.decode()
                {
                    text.push_str(match name.as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    });
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_texts_and_blocks() {
        let xml = r#"<?xml version="1.0"?>
            <R xmlns="x"><HostedZones>
              <HostedZone><Id>/hostedzone/Z1</Id><Name>a.com.</Name></HostedZone>
              <HostedZone><Id>/hostedzone/Z2</Id><Name>b&amp;c.com.</Name></HostedZone>
            </HostedZones><vpcId>vpc-1</vpcId></R>"#;
        let zones = blocks(xml, "HostedZone");
        assert_eq!(zones.len(), 2);
        assert_eq!(zones[0].children["Id"], "/hostedzone/Z1");
        assert_eq!(zones[1].children["Name"], "b&c.com.");
        assert_eq!(first_text(xml, "vpcId").as_deref(), Some("vpc-1"));
    }
}
