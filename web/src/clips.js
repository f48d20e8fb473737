// Sweeps and morphs as clips, the web twin of celeblook/clips.py: a looping GIF (gifenc), or a video through the
// browser's own encoders (WebCodecs) muxed by mediabunny (MPL-2.0, vendored): MP4 with H.264 where this browser
// encodes it, else WebM (VP9, else VP8), which every browser with WebCodecs encodes. Frames arrive one by one
// (ImageData) and go straight into the encoder, so a long morph never holds its frames.
//
//   chooseVideo(format, side, canEncode) -> {format, codec, notices}   (which container and codec, and why)
//   clipEncoder(format, side, frameMs) -> {add(imageData), finish() -> {bytes, mime, format, codec, notices}, cancel()}

import {GIFEncoder, applyPalette, quantize} from '../vendor/gifenc/gifenc.esm.js';
import {BufferTarget, Mp4OutputFormat, Output, QUALITY_HIGH, VideoSample, VideoSampleSource, WebMOutputFormat, canEncodeVideo}
  from '../vendor/mediabunny/mediabunny.min.mjs';

export const CLIP_FORMATS = ['gif', 'mp4', 'webm'];
export const MIME = {gif: 'image/gif', mp4: 'video/mp4', webm: 'video/webm'};
// the codecs each container is tried with, best first (mediabunny's names): WebM's are royalty-free and in
// every WebCodecs browser; H.264 encoders are missing from some builds (Chromium without proprietary codecs)
const CODECS = {mp4: ['avc'], webm: ['vp9', 'vp8']};

function checkFormat(format) {
  if (!CLIP_FORMATS.includes(format)) throw new Error(`format must be one of ${CLIP_FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
  return format;
}

/**
 * The container and codec a clip asked as ``format`` is made in here: the first of the format's codecs that
 * ``canEncode(codec, {width, height})`` accepts; MP4 falls back to WebM, with a notice saying so.
 */
export async function chooseVideo(format, side, canEncode = canEncodeVideo) {
  if (checkFormat(format) === 'gif') throw new Error('a GIF is no video');
  const tried = format === 'mp4' ? ['mp4', 'webm'] : [format];
  for (const container of tried) {
    for (const codec of CODECS[container]) {
      if (await canEncode(codec, {width: side, height: side, bitrate: QUALITY_HIGH})) {
        const notices = container === format ? [] : [`this browser has no H.264 encoder: the clip is WebM (${codec.toUpperCase()}) instead of MP4`];
        return {format: container, codec, notices};
      }
    }
  }
  throw new Error(`this browser encodes no ${format === 'mp4' ? 'MP4 or WebM' : 'WebM'} video: choose the GIF`);
}

function gifEncoder(side, frameMs) {
  const gif = GIFEncoder();
  return {
    async add({data}) {
      const palette = quantize(data, 256);
      gif.writeFrame(applyPalette(data, palette), side, side, {palette, delay: frameMs, repeat: 0});
    },
    async finish() {
      gif.finish();
      return {bytes: gif.bytes(), mime: MIME.gif, format: 'gif', codec: 'gif', notices: []};
    },
    async cancel() {},
  };
}

async function videoEncoder(format, side, frameMs) {
  const chosen = await chooseVideo(format, side);
  const container = chosen.format === 'mp4' ? new Mp4OutputFormat({fastStart: 'in-memory'}) : new WebMOutputFormat();
  const output = new Output({format: container, target: new BufferTarget()});
  // constant quality for the frame size (bits scale with the area), as the Python side's CRF
  const source = new VideoSampleSource({codec: chosen.codec, bitrate: QUALITY_HIGH});
  output.addVideoTrack(source, {frameRate: 1000 / frameMs});
  await output.start();
  let frame = 0;
  return {
    async add(image) {
      const sample = new VideoSample(image.data, {format: 'RGBX', codedWidth: image.width, codedHeight: image.height,
        timestamp: (frame * frameMs) / 1000, duration: frameMs / 1000});
      frame += 1;
      try {
        await source.add(sample);
      } finally {
        sample.close();
      }
    },
    async finish() {
      await output.finalize();
      return {bytes: new Uint8Array(output.target.buffer), mime: MIME[chosen.format], ...chosen};
    },
    cancel: () => output.cancel(),
  };
}

/** An encoder of ``side`` px frames shown ``frameMs`` each into a clip of ``format`` ('gif' | 'mp4' | 'webm'). */
export async function clipEncoder(format, side, frameMs) {
  return checkFormat(format) === 'gif' ? gifEncoder(side, frameMs) : videoEncoder(format, side, frameMs);
}
