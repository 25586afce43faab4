// `torchface cluster --html report.html`: a self-contained contact sheet, one
// row of face thumbnails per person (JPEG data: URLs, no outside files), then
// the unclustered faces.
import * as fs from 'fs';
import type { LibraryClusters } from './library';
import { faceThumbnail } from './thumbnail';

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The contact sheet's HTML. `photoSize(file)` gives the (oriented) size of a photo; `perRow` caps the thumbnails per person. */
export async function contactSheet(c: LibraryClusters, photoSize: (photoId: number) => { width: number; height: number }, options: { perRow?: number; size?: number; title?: string } = {}): Promise<string> {
  const perRow = options.perRow ?? 24;
  const size = options.size ?? 72;
  const cache = new Map<string, Buffer>();
  const thumb = async (f: LibraryClusters['unclustered'][number]): Promise<string> => {
    try {
      let bytes = cache.get(f.file);
      if (!bytes) {
        bytes = await fs.promises.readFile(f.file);
        cache.clear(); // photos are visited in order; keep one
        cache.set(f.file, bytes);
      }
      const jpeg = await faceThumbnail(f, photoSize(f.photoId), size, bytes);
      return `<img src="data:image/jpeg;base64,${jpeg.toString('base64')}" width="${size}" height="${size}" title="${escape(f.file)} (face ${f.id})" alt="">`;
    } catch {
      return `<span class="missing" title="${escape(f.file)}">?</span>`;
    }
  };
  const rows: string[] = [];
  for (const cl of c.clusters) {
    const imgs = [];
    for (const f of cl.faces.slice(0, perRow)) imgs.push(await thumb(f));
    const more = cl.faces.length > perRow ? `<span class="more">+${cl.faces.length - perRow}</span>` : '';
    rows.push(`<tr><th>${cl.name ? escape(cl.name) : `<i>#${cl.id}</i>`}<br><small>${cl.faces.length} faces</small></th><td>${imgs.join('')}${more}</td></tr>`);
  }
  if (c.unclustered.length) {
    const imgs = [];
    for (const f of c.unclustered.slice(0, perRow * 4)) imgs.push(await thumb(f));
    rows.push(`<tr class="unclustered"><th>unclustered<br><small>${c.unclustered.length} faces</small></th><td>${imgs.join('')}</td></tr>`);
  }
  const title = escape(options.title ?? 'torchface: people');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<style>body{font:14px system-ui,sans-serif;margin:1rem;background:#f6f6f4}table{border-collapse:collapse}th{text-align:left;vertical-align:top;padding:.4rem 1rem .4rem 0;min-width:8rem;font-weight:600}td{padding:.3rem 0;border-top:1px solid #ddd}img{margin:1px;border-radius:3px;vertical-align:middle}.more{color:#666;margin-left:.5rem}.unclustered th{color:#666}.missing{display:inline-block;width:${size}px;height:${size}px;background:#ddd;text-align:center}</style></head>
<body><h1>${title}</h1><p>${c.clusters.length} people, ${c.clusters.reduce((s, x) => s + x.faces.length, 0)} faces clustered, ${c.unclustered.length} unclustered.</p>
<table>${rows.join('\n')}</table></body></html>
`;
}
