// Sharing a result: the system share sheet where the browser can share files (Web Share API level 2, mostly
// phones), a download otherwise. Everything stays on the device until the visitor picks where it goes.

/**
 * Share ``bytes`` as a file ``name`` of type ``mime``; resolves to 'shared', 'cancelled' (the visitor closed
 * the share sheet) or 'downloaded' (no file sharing here: the file is saved instead).
 */
export async function share({bytes, mime, name}) {
  if (!bytes || !mime || !name) throw new Error('share needs {bytes, mime, name}');
  const file = new File([bytes], name, {type: mime});
  if (navigator.canShare?.({files: [file]})) {
    try {
      await navigator.share({files: [file], title: name});
      return 'shared';
    } catch (err) {
      if (err.name === 'AbortError') return 'cancelled';
      throw err;
    }
  }
  const link = Object.assign(document.createElement('a'), {href: URL.createObjectURL(file), download: name, hidden: true});
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000); // the download has started long before
  return 'downloaded';
}
