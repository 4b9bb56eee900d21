// Parse Mermaid diagrams with Mermaid's own parser (the grammar GitHub renders with).
// stdin: a JSON list of diagram texts. stdout: a JSON list, per diagram null (ok) or the parse error.
import DOMPurify from 'dompurify';
import mermaid from 'mermaid';

// Node has no DOM, so DOMPurify cannot sanitize labels here. Sanitizing changes label text, never
// the syntax, so the identity stands in for it.
Object.assign(DOMPurify, { sanitize: (t) => t, addHook: () => {}, removeHook: () => {}, removeAllHooks: () => {} });
mermaid.initialize({ startOnLoad: false });

let input = '';
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const text of JSON.parse(input)) {
  try {
    const parsed = await mermaid.parse(text);
    results.push(parsed && parsed.diagramType ? null : 'not recognised as a diagram');
  } catch (e) {
    results.push(String(e.message || e));
  }
}
process.stdout.write(JSON.stringify(results));
