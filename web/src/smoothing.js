// The one-euro filter (Casiez, Roussel and Vogel, CHI 2012) over vectors: a low-pass filter whose cutoff rises
// with the signal's speed, so a still face gives a still result (low cutoff: the jitter of the landmarks and of
// the encoder is smoothed away) while a moving one is followed with little lag (high cutoff). A vector (a
// quad's 8 numbers, a W+ latent's 11776) shares one cutoff, from the RMS of its filtered speed, so all of it
// moves together.

const alpha = (cutoff, dt) => 1 / (1 + 1 / (2 * Math.PI * cutoff * dt));

export class OneEuro {
  /**
   * ``minCutoff`` (Hz): the cutoff at rest (lower = stiller, laggier); ``beta``: how fast the cutoff rises with
   * the speed (per unit of the signal per second); ``dCutoff`` (Hz): the cutoff of the speed estimate.
   */
  constructor({minCutoff = 1, beta = 0, dCutoff = 1} = {}) {
    for (const [name, value] of Object.entries({minCutoff, beta, dCutoff})) {
      if (!(Number.isFinite(value) && value >= 0) || (name !== 'beta' && value === 0)) {
        throw new Error(`smoothing ${name} must be a ${name === 'beta' ? 'non-negative' : 'positive'} number, got ${value}`);
      }
    }
    Object.assign(this, {minCutoff, beta, dCutoff});
    this.reset();
  }

  /** Forget the past: the next value passes unchanged. */
  reset() {
    this.value = null;
    this.speed = null;
    this.time = null;
  }

  /** The filtered value of ``x`` (an array of numbers) seen at ``time`` seconds; a new Float32Array. */
  filter(x, time) {
    if (this.value === null || this.value.length !== x.length || !(time > this.time)) {
      this.value = Float32Array.from(x);
      this.speed = new Float32Array(x.length);
      this.time = time;
      return Float32Array.from(this.value);
    }
    const dt = time - this.time;
    this.time = time;
    const ad = alpha(this.dCutoff, dt);
    let squares = 0;
    for (let i = 0; i < x.length; i++) {
      const v = this.speed[i] + ad * ((x[i] - this.value[i]) / dt - this.speed[i]);
      this.speed[i] = v;
      squares += v * v;
    }
    const a = alpha(this.minCutoff + this.beta * Math.sqrt(squares / x.length), dt);
    for (let i = 0; i < x.length; i++) this.value[i] += a * (x[i] - this.value[i]);
    return Float32Array.from(this.value);
  }
}
