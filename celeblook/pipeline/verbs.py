"""Pipeline: the one door through which the app, the CLI and the API reach the models.

    photo --load--> --align--> crop --E_I--> e --f--> W+ [--refine--> W+'] --G--> face        invert
    prompt --E_T--> e_T --f--> W+ (or CLIP-guided optimisation) --G--> face                    text_to_face
    W+ + C * (f(e_T(target)) - f(e_T(source))) --G--> face, for each asked C                   edit / sweep
    interpolation or per-slot style mixing of two W+ --G--> frames                             morph

Each verb takes its request (celeblook.pipeline.requests: ``pipe.edit(EditRequest(face, "glasses"))``) or the
request's fields as arguments (``pipe.edit(face, "glasses")``), checked once against ``self.limits`` before it runs;
they may arrive as an API client sends them (numbers as strings, None, NaN): a bad value raises InputError with one
line naming the field. Edits and
morphs start from anything a person has: a photo (``PhotoStart``), a prompt (``PromptStart``), a face made
earlier (``Face``) or a W+ latent.

Methods return a ``Result`` (faces, each with its image, the W+ rendered and its scores, plus notices for
the user) or, for edits, an ``EditResult`` with one ``Variant`` per asked strength. Scores are cosines of
E_I embeddings (clip_similarity: to the input face; text_score: to the prompt's E_T embedding) and the
number of generator calls spent. Randomness comes only from seeds (celeblook.seeds, the stream the browser
page shares), so a seed fully determines its result.

Every forward runs on ``models.engine`` (the torch models, or their ONNX exports), numpy in and out, so the
full install and the torch-free runtime answer with the same code. The slow paths (refinement, CLIP-guided
optimisation) need gradients: they run on the torch models (celeblook.refine) and say so where there are none.
"""

from __future__ import annotations

import numpy as np

from ..engine import cosine, truncate
from ..errors import InputError, WeightsError
from ..limits import TARGET_SIMILARITY
from ..photo.aligned import align_photo
from ..strength_oracle import oracle_strength
from ..text.prompts import DEFAULT_SOURCE, SOURCE_FROM_IMAGE, edit_direction, embed_prompts, vary_embedding
from .base import PipelineBase
from .requests import (
    EditRequest,
    InvertRequest,
    MorphRequest,
    PhotoStart,
    PromptStart,
    RandomRequest,
    Start,
    SweepRequest,
    TextRequest,
    is_array,
    labelled,
    takes,
)
from .results import Direction, EditResult, Face, Result, Variant
from .scoring import identity_of, in_photo, judge_variants, score_edit
from .slow import EDIT_OPTIMIZE_STEPS, REFINE_STEPS, TEXT_OPTIMIZE_STEPS, Progress

TEXT_VARIATION = 0.5  # seeded spread of a prompt's embedding, in units of the centre set's RMS spread
SCORE_SIZE = 256  # edits are scored against the unedited face rendered at this size, and the oracle probes at it


class Pipeline(PipelineBase):
    # -----------------------------------------------------------------------------------------------
    # the user's requests

    @takes(RandomRequest)
    def random_faces(self, request: RandomRequest, progress: Progress | None = None) -> Result:
        """Faces of seeds ``seed`` .. ``seed + count - 1``."""
        r = request
        faces = [self._face(self._seeded_wplus(s, r.psi), r.size, seed=s, psi=r.psi, generator_calls=1)[0]
                 for s in range(r.seed, r.seed + r.count)]
        return self._result(faces)

    @takes(InvertRequest)
    def invert(self, request: InvertRequest, progress: Progress | None = None) -> Result:
        """A photo (loaded, aligned, encoded, mapped, optionally refined) -> its face, with its identity distance
        to the person in the photo and pasted back into the photo."""
        result = self._invert(request, progress)
        in_photo(result.faces[0], result.photo)
        return result

    def _invert(self, request: InvertRequest, progress: Progress | None) -> Result:
        """The inversion alone: what edits and morphs start from."""
        photo, size = request.photo, request.size
        iterations = self._refine_iterations(request.refine_iterations)
        refine_steps = self.slow.steps(request.refine_steps, REFINE_STEPS, "inverting a photo", "refinement", progress)
        loaded = align_photo(photo.source, photo.aligned, photo.face, photo.label)
        aligned, notices = loaded.aligned, list(loaded.notices)
        embedding = self.engine.embed_photos([aligned.image])
        if self.has_mapper:
            start = self.engine.map(embedding)
        else:
            start = self._mean_wplus()
            notices.append(f"slow path: no mapper ({self.missing()[0]}), so the inversion starts from the mean "
                           f"face and is refined for {refine_steps} steps")
        calls = 0
        if iterations and self.has_mapper:
            start, calls = self._refined(aligned.image, start, iterations), iterations
            notices.append(f"refined by the learned refiner: {iterations} iteration{'s' * (iterations > 1)}")
        if refine_steps:
            refined = self.slow.refine.refine_inversion(self.generator, self.image_encoder, aligned.image, start, refine_steps,
                                                    progress=progress)
            start, calls = refined.wplus, calls + refined.generator_calls
            notices.append(f"refined for {refine_steps} steps: loss {refined.losses[0]:.4f} -> {refined.losses[-1]:.4f}")
        face, pixels = self._face(start, size, generator_calls=calls + 1)
        face.scores["clip_similarity"] = cosine(self.engine.embed_pixels(pixels), embedding)
        return self._result([face], notices, photo=loaded)

    @takes(TextRequest)
    def text_to_face(self, request: TextRequest, progress: Progress | None = None) -> Result:
        """Fast path: W+ = w_avg + psi * (f(e) - w_avg), e = the prompt's embedding plus a seeded variation.

        Slow path (``optimize_steps`` > 0, or no mapper): CLIP-guided optimisation from the fast path's
        code, or without a mapper from the seed's face truncated by psi (psi 0: the mean face).
        """
        r, notices = request, list(request.notices)
        optimize_steps = self.slow.steps(r.optimize_steps, TEXT_OPTIMIZE_STEPS, "text to face", "CLIP-guided optimisation",
                                         progress)
        text_embedding, more = embed_prompts(self.engine, [r.prompt])
        notices += more
        if self.has_mapper:
            varied = vary_embedding(text_embedding, TEXT_VARIATION * self.engine.e_scale, r.seed)
            start = truncate(self.engine.map(varied), self.engine.w_avg, r.psi)
        else:
            start = self._seeded_wplus(r.seed, r.psi)
            notices.append(f"no mapper: {self.missing()[0]}")
        calls = 0
        if optimize_steps:
            notices.append(f"slow path: CLIP-guided optimisation, {optimize_steps} steps at 256 px")
            result = self.slow.refine.text_to_face_optimize(self.generator, self.image_encoder, text_embedding, start,
                                                        optimize_steps, progress=progress)
            start, calls = result.wplus, result.generator_calls
        face, pixels = self._face(start, r.size, seed=r.seed, psi=r.psi, generator_calls=calls + 1)
        face.scores["text_score"] = cosine(self.engine.embed_pixels(pixels), text_embedding)
        return self._result([face], notices)

    def face_of(self, start: Start, size: object = 1024, progress: Progress | None = None) -> Result:
        """The face an edit or morph starts from: a photo inverted, a prompt's face, a face made earlier or a
        W+ latent rendered."""
        if isinstance(start, PhotoStart):
            return self._invert(InvertRequest(start, 0, size).check(self.limits), progress)
        if isinstance(start, PromptStart):
            return self.text_to_face(start.text, start.seed, start.psi, size)
        if isinstance(start, Face):
            return self._result([start])
        if is_array(start):
            size = self.limits.size.check(size)
            return self._result([self._face(self._wplus(start), size, generator_calls=1)[0]])
        raise InputError(f"cannot start from a {type(start).__name__}: give a photo, a prompt, a face or a W+ latent")

    @takes(EditRequest)
    def edit(self, request: EditRequest, progress: Progress | None = None) -> EditResult:
        """One edit per asked strength (a number C, "learned" or "oracle") of the same face and direction.

        A strength that cannot run (no trained strength head) gives a Variant without a face whose notice
        says why; the others still run. ``source``: None = the neutral prompt, "<image>" = E_I of the face.
        Without a mapper a manual C is a CLIP-guided optimisation of ``optimize_steps`` (0: the default).
        """
        r = request
        steps = r.optimize_steps or EDIT_OPTIMIZE_STEPS  # per manual C, on the slow path (no mapper)
        if not self.has_mapper:
            self.slow.need_gradients(f"editing without a mapper ({self.missing()[0]})")
            manual = sum(not isinstance(s, str) for s in r.strengths)
            self.slow.expect((REFINE_STEPS if isinstance(r.start, PhotoStart) else 0) + manual * steps, progress)
        origin = self.face_of(r.start, size=r.size, progress=progress)
        original = origin.faces[0]
        wplus = self._wplus(original.wplus)
        if not self.has_mapper:
            return self._edit_without_mapper(origin, wplus, r, steps, progress)
        direction, notices = self._direction(wplus, r.target, r.source)
        reference = self.engine.embed_pixels(self._render(wplus, SCORE_SIZE))
        variants = []
        for i, strength in enumerate(r.strengths):
            name = strength if isinstance(strength, str) else "manual"
            if progress:
                progress(i / len(r.strengths), f"{name} edit")
            try:
                face, more = self._edit_one(wplus, direction, reference, strength, r.size)
            except WeightsError as err:  # e.g. no trained strength head: the other variants still run
                variants.append(Variant(name, None, [f"{name} C unavailable: {err}"]))
                continue
            variants.append(Variant(name, face, more))
        judge_variants(origin, variants)
        return EditResult(original, variants, origin.notices + list(r.notices) + notices, origin.photo, direction)

    @takes(SweepRequest)
    def sweep(self, request: SweepRequest, progress: Progress | None = None) -> Result:
        """Frames of the edit at C = 0 .. c_max; of an ``EditResult``, its face and direction (nothing encoded again)."""
        r = request
        if isinstance(r.start, EditResult):
            if r.start.direction is None:  # made on the slow path
                raise WeightsError(str(self.missing()[0]))
            wplus, direction, notices = self._wplus(r.start.original.wplus), r.start.direction, list(r.start.notices)
        else:
            origin = self.face_of(r.start, size=r.size, progress=progress)
            wplus = self._wplus(origin.faces[0].wplus)
            direction, more = self._direction(wplus, r.target, r.source)
            notices = origin.notices + list(r.notices) + more
        reference = None
        faces = []
        for i, c in enumerate(np.linspace(0, r.c_max, r.n_frames).tolist()):
            if progress:
                progress(i / r.n_frames, f"sweep frame {i + 1}/{r.n_frames}")
            face, pixels = self._face(wplus + np.float32(c) * direction.delta, r.size, C=c, generator_calls=1)
            embedding = self.engine.embed_pixels(pixels)
            reference = embedding if reference is None else reference  # the first frame (C = 0) is the unedited face
            score_edit(face, embedding, reference, direction.target_embedding)
            faces.append(face)
        return Result(faces, notices)

    @takes(MorphRequest)
    def morph(self, request: MorphRequest, progress: Progress | None = None) -> Result:
        """interpolate: (1-t) a + t b on every slot. style_mix: slots >= crossover move from a to b, the
        rest stay a's (coarse structure of a, finer styles of b at the last frame)."""
        r = request
        first = self.face_of(r.a, size=r.size, progress=progress)
        second = self.face_of(labelled(r.b, "the second photo"), size=r.size, progress=progress)
        wa, wb = self._wplus(first.faces[0].wplus), self._wplus(second.faces[0].wplus)
        moving = (np.arange(self.limits.n_slots) >= r.crossover).astype(np.float32)[None, :, None]
        faces = []
        for i, t in enumerate(np.linspace(0, 1, r.n_frames).tolist()):
            if progress:
                progress(i / r.n_frames, f"morph frame {i + 1}/{r.n_frames}")
            weight = np.float32(t) * moving
            # a + 1 * (b - a) is b only up to rounding: the last frame takes b's moving slots exactly
            frame = np.where(weight == 1, wb, wa + weight * (wb - wa))
            faces.append(self._face(frame, r.size, t=t, generator_calls=1)[0])
        for end, origin in ((faces[0], first), (faces[-1], second)):  # each end against its own photo
            if origin.photo is not None:
                end.identity = identity_of(origin.photo.descriptor, end)
        return Result(faces, first.notices + second.notices[len(self.notices):])

    # -----------------------------------------------------------------------------------------------
    # edits' parts

    def _edit_one(self, wplus: np.ndarray, direction: Direction, reference: np.ndarray, strength: float | str,
                  size: int) -> tuple[Face, list[str]]:
        notices, calls, delta = [], 1, direction.delta  # calls: the reference render
        if strength == "learned":
            if not self.engine.has("strength"):
                raise WeightsError(str(next(m for m in self.missing() if m.part == "strength")))
            c = float(self.engine.strength(wplus, direction.target_embedding, delta)[0])
        elif strength == "oracle":
            def similarity(c: float) -> float:
                return cosine(reference, self.engine.embed_pixels(self._render(wplus + np.float32(c) * delta, SCORE_SIZE)))

            found = oracle_strength(similarity, TARGET_SIMILARITY)  # the original's embedding is already at hand
            c, calls = found.strength, calls + found.generator_calls
            if found.note:
                notices.append(found.note)
        else:
            c = float(strength)
        face, pixels = self._face(wplus + np.float32(c) * delta, size, C=c, generator_calls=calls + 1)
        score_edit(face, self.engine.embed_pixels(pixels), reference, direction.target_embedding)
        return face, notices

    def _edit_without_mapper(self, origin: Result, wplus: np.ndarray, request: EditRequest, steps: int,
                             progress: Progress | None) -> EditResult:
        """The slow path on public weights alone: CLIP-guided optimisation toward the target prompt, with the
        manual C as the weight of the text term; learned and oracle C need the mapper's edit direction."""
        target_embedding, more = embed_prompts(self.engine, [request.target])
        notices = [*request.notices, *more,
                   f"slow path: no mapper, so each manual C is a CLIP-guided optimisation of {steps} steps at 256 px"]
        reference = self.engine.embed_pixels(self._render(wplus, SCORE_SIZE))
        variants = []
        for strength in request.strengths:
            name = strength if isinstance(strength, str) else "manual"
            if isinstance(strength, str):
                variants.append(Variant(name, None, [f"{name} C unavailable: it needs the trained mapper and "
                                                     f"strength head ({self.missing()[0]})"]))
                continue
            found = self.slow.refine.edit_optimize(self.generator, self.image_encoder, wplus, target_embedding, strength, steps,
                                               progress=progress)
            face, pixels = self._face(found.wplus, request.size, C=strength, generator_calls=found.generator_calls + 2)
            score_edit(face, self.engine.embed_pixels(pixels), reference, target_embedding)
            variants.append(Variant(name, face))
        judge_variants(origin, variants)
        return EditResult(origin.faces[0], variants, origin.notices + notices, origin.photo)

    def _direction(self, wplus: np.ndarray, target: str, source: str | None) -> tuple[Direction, list[str]]:
        """The edit's direction and notices, of checked prompts; source None = the neutral prompt, '<image>' = E_I(G(wplus))."""
        if not self.has_mapper:
            raise WeightsError(str(self.missing()[0]))
        source = source or DEFAULT_SOURCE
        if source == SOURCE_FROM_IMAGE:
            embeddings, more = embed_prompts(self.engine, [target])
            source_embedding = self.engine.embed_pixels(self._render(wplus, SCORE_SIZE))
        else:
            embeddings, more = embed_prompts(self.engine, [target, source])
            source_embedding = embeddings[1:]
        target_embedding = embeddings[:1]
        return Direction(edit_direction(self.engine, target_embedding, source_embedding), target_embedding), more
