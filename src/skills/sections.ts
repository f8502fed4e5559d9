/**
 * Section segmentation of job postings for the skill-extraction pipeline: splits a posting into
 * sections (company, responsibilities, qualifications, benefits, other) and sentences, so a
 * skill found in a sentence can be weighed by where it stands (`sectionWeight`). A skill listed
 * under "Requirements" is evidence the hire needs it; the same word under "About us" may only
 * describe the employer's product.
 *
 * The idea follows LinkedIn Engineering, "Extracting skills from content to fuel the LinkedIn
 * Skills Graph" (2023): job postings are segmented into sections before tagging, and the
 * section a skill is mentioned in affects its weight (a skill in the qualifications counts
 * more than one in the company description).
 *
 * Rules, in order (English postings only: every heading and cue list below is English):
 *
 * 1. Lines. The text is split on `\r\n`, `\n` and `\r`. Each line is trimmed (whitespace and
 *    zero-width characters); empty lines are skipped.
 * 2. Headings. A line is a heading when its label (the line without markdown marks `#`/`**`
 *    and trailing `:;.!?…`) has at most 8 words and matches, as a whole and case-insensitively,
 *    one of the heading lists below (`HEADINGS`). A line "Label: content" whose label matches
 *    is a heading followed by content; the content is split into sentences like any line (a
 *    line that starts with a list marker never matches, so list items are never headings). Only
 *    recognised headings change the section: a short Title-Case line that no list knows (a
 *    job title, "Job type:") is an ordinary sentence, so the result never depends on guessing
 *    what an unknown heading means.
 *    - A typed heading ("Requirements", "What you'll do", "We offer", "About us"…) starts a
 *      section of its kind (`decidedBy: 'heading'`); cues are ignored inside it.
 *    - A neutral heading ("Job description", "Additional information", "How to apply",
 *      "Location", "Job type"…) names a part of the posting that mixes kinds. It starts a
 *      section that is classified by cues, like the text before the first heading (rule 4).
 *      In the SkillSpan postings "Job description" heads the whole body (company blurb,
 *      then tasks, then the profile), so fixing one kind for it would be wrong more often
 *      than right.
 *    The heading line belongs to its section, and is not a sentence (its content part is).
 * 3. Sentences. Each line (or a heading's content) is split at glyph bullets anywhere
 *    (`•`, `☞`, `▪`…), then a list marker at the start of each piece is dropped (`-`, `*`,
 *    `+`, `–`, `·`, `→`, `1.`, `1)` followed by a space), then the piece is split after
 *    `.`/`!`/`?` followed by whitespace (not after "e.g.", "i.e.", "approx.", "Dr."…) and after
 *    `;` followed by whitespace. Sentences keep their closing punctuation; whitespace-only ones
 *    are dropped. `start`/`end` are the trimmed offsets into the original text, so
 *    `text.slice(start, end) === sentence.text`.
 * 4. Cues, outside typed headings (before the first heading, and after a neutral one). Each
 *    sentence is given the kind of its earliest cue phrase (`CUES`; ties: the longer match,
 *    then `SECTION_KINDS` order), or none. A run of sentences takes the kind of its first
 *    cue-bearing sentence, including the cue-less sentences before it (`decidedBy: 'cue'`); a
 *    later sentence whose cue is of another kind starts a new section (heading `null`) at
 *    that sentence. A run with no cue at all is `other` (`decidedBy: 'default'`).
 *
 * Sections are in document order and do not overlap: a section starts at its heading line (or
 * its first sentence) and ends at the end of its last sentence (or of its heading, when it has
 * none). Blank lines between sections belong to none.
 *
 * @example
 * const { sections, sentences } = segmentPosting('We are a fintech.\nRequirements: 5 years of Java\n- SQL');
 * sections.map((s) => s.kind);        // ['company', 'qualifications']
 * sentences.map((s) => s.text);       // ['We are a fintech.', '5 years of Java', 'SQL']
 * sentences.map((s) => s.section);    // [0, 1, 1]
 */

export type SectionKind = 'company' | 'responsibilities' | 'qualifications' | 'benefits' | 'other';

/** Every kind, in the order that breaks ties between cues of equal position and length. */
export const SECTION_KINDS: readonly SectionKind[] = Object.freeze([
  'company',
  'responsibilities',
  'qualifications',
  'benefits',
  'other',
]);

/**
 * Default weight of a skill found in each kind of section, in (0, 1].
 * - qualifications 1.0: the posting says the hire must (or should) have the skill — the
 *   strongest evidence a posting gives.
 * - responsibilities 0.9: the hire will use the skill, but task lists also name what the team
 *   or product does around the role.
 * - other 0.7: unclassified text (titles, intros, application notes) still mostly describes
 *   the job, but nothing says how.
 * - benefits 0.4: skills there are mostly perks ("LinkedIn Learning courses", "German
 *   classes"), not requirements.
 * - company 0.3: describes what the employer builds or sells, which the hire may never touch.
 */
export const DEFAULT_SECTION_WEIGHTS: Readonly<Record<SectionKind, number>> = Object.freeze({
  qualifications: 1.0,
  responsibilities: 0.9,
  other: 0.7,
  benefits: 0.4,
  company: 0.3,
});

export interface PostingSection {
  kind: SectionKind;
  /** The heading's label as written (without markdown marks and trailing punctuation), or null. */
  heading: string | null;
  /** char offsets into the document, end exclusive */
  start: number;
  end: number;
  /** how the kind was decided: 'heading' | 'cue' | 'default' */
  decidedBy: 'heading' | 'cue' | 'default';
}

export interface PostingSentence {
  text: string;
  start: number;
  end: number;
  /** index into sections */
  section: number;
}

export interface SegmentedPosting {
  sections: PostingSection[];
  sentences: PostingSentence[];
}

/**
 * The weight of a skill found in a section of `kind`: `weights[kind]` when given, else
 * `DEFAULT_SECTION_WEIGHTS[kind]`. An override of 0 ignores that kind of section.
 *
 * @example
 * sectionWeight('company');                          // 0.3
 * sectionWeight('company', { company: 0.5 });        // 0.5
 */
export function sectionWeight(kind: SectionKind, weights?: Partial<Record<SectionKind, number>>): number {
  const w = weights?.[kind] ?? DEFAULT_SECTION_WEIGHTS[kind];
  if (!Number.isFinite(w) || w < 0 || w > 1) {
    throw new RangeError(
      `sectionWeight: the weight for '${kind}' must be a number in [0, 1], got ${String(w)}; ` +
        `pass e.g. { ${kind}: ${DEFAULT_SECTION_WEIGHTS[kind]} } (the default)`,
    );
  }
  return w;
}

// ---------------------------------------------------------------------------------------------
// Heading lists. Each alternative must match the whole label (anchored, case-insensitive), so
// "Company size" is not "Company" and a bullet item "Health insurance" is not a heading. Kept
// to labels seen in real postings (SkillSpan dev: "Job benefits:", "Company description:",
// "Required Qualifications", "What You Will Do", "YOUR PROFILE", "Your missions", "We offer:",
// "Salary and appointment terms"…) and common English variants.

type HeadingKind = Exclude<SectionKind, 'other'> | 'neutral';

const APOS = "['’]";

const HEADING_ALTERNATIVES: readonly (readonly [HeadingKind, readonly string[]])[] = [
  [
    'qualifications',
    [
      // "Qualifications", "Required Qualifications", "Your key skills", "Technical skills and
      // requirements", "Essential criteria", "Required profile", "Desired experience"
      '(?:(?:required|basic|minimum|preferred|desired|essential|key|core|technical|personal|professional|role|job|candidate|your|the|our|must[- ]have|nice[- ]to[- ]have)\\s+)*' +
        '(?:qualifications?|requirements?|skills?|skill\\s?set|competenc(?:e|es|ies)|prerequisites|criteria|profile|experience|expertise|know[- ]how)' +
        '(?:\\s+(?:and|&)\\s+(?:requirements|experiences?|qualifications|competencies|skills|knowledge))?',
      'the qualifications you(?: will)? need',
      '(?:your|educational|professional) background',
      'education(?:\\s+(?:and|&)\\s+(?:soft\\s+)?(?:skills|experience))?',
      `(?:what|who) you(?:${APOS}ll| will| should| must)? (?:need|bring|have|are|be)(?: to (?:bring|have|know))?(?: to the table| with you)?`,
      `(?:what|who|whom) we(?:${APOS}re| are) (?:looking|searching) for`,
      `we(?:${APOS}re| are) looking for (?:someone|somebody|people|a person|candidates|you)(?: (?:who|with|that))?`,
      '(?:the )?ideal candidate',
      'about you',
      'you should apply if',
      'people like you',
      '(?:must|nice|good) to have',
      'must[- ]haves?',
      'nice[- ]to[- ]haves?',
      '(?:bonus|extra) points',
      '(?:important|essential) (?:for|to) us',
      'desired|desirable|preferred|advantageous',
      'your (?:personality|knowledge)',
      'our expectations(?: of you)?',
      'what we expect(?: from you)?',
      // The tech postings' tag list ("Technologies\njava apache…") and stack lists name what the
      // hire works with.
      'technologies',
      '(?:the |our )?tech(?:nology)? stack',
      '(?:the |our )stack',
      'tools and technologies',
      '(?:hard|soft) skills',
    ],
  ],
  [
    'responsibilities',
    [
      // "Responsibilities", "Key Responsibilities", "Responsibilities and tasks", "Your missions"
      '(?:(?:key|main|primary|core|your|the|job|role|work|daily)\\s+)*' +
        '(?:responsibilit(?:y|ies)|duties|tasks|accountabilities|missions?|assignments)' +
        '(?:\\s+(?:and|&)\\s+(?:tasks|duties|responsibilities))?',
      '(?:primary |main |key )?areas? of responsibility',
      '(?:more specifically,? )?(?:your|the) responsibilities (?:will )?(?:cover|include)',
      `(?:what|how) you(?:${APOS}ll| will)? (?:do|be doing|work on|be working on|achieve|contribute)`,
      `what your (?:role|job|day) will (?:be|look like)`,
      'what (?:part|role) will you play',
      `you(?:${APOS}ll| will) work on`,
      `(?:in this (?:role|position)|as an? [^:]{1,40}) you(?:${APOS}ll| will)(?: get to)?`,
      `how you(?:${APOS}ll| will) (?:strengthen|support|help) (?:our|the) team`,
      '(?:more )?about the (?:role|position|job)',
      '(?:the|your) (?:role|position|job|mission|opportunity|impact)',
      'your day[- ]to[- ]day',
      '(?:a )?day in the life',
      '(?:role|position) (?:description|overview|summary|purpose)',
    ],
  ],
  [
    'benefits',
    [
      '(?:job |employee |your |our |additional |other |the )?(?:benefits|perks)(?:\\s+(?:and|&)\\s+(?:perks|benefits|compensation))?',
      `now let${APOS}?s talk about perks and compensation`,
      '(?:what )?we offer(?: you)?',
      'what (?:we|you) (?:offer|get|can expect(?: from us)?)',
      `what${APOS}?s in it for you`,
      '(?:our|the) offer',
      'what awaits you',
      'this (?:and more )?is awaiting you',
      'why (?:join|work (?:for|with|at)) us',
      '(?:compensation|salary|pay|remuneration)(?:\\s+(?:and|&)\\s+(?:benefits|perks))?',
      '(?:salary|compensation|pay) (?:and|&) (?:terms|conditions)(?: of (?:employment|appointment))?',
      'salary and appointment terms',
      '(?:terms|conditions) of (?:employment|appointment)',
      'employment (?:conditions|terms)',
      'conditions',
      '(?:the )?package',
      'plus these (?:awesome )?benefits',
      'your (?:opportunities|benefits)',
    ],
  ],
  [
    'company',
    [
      // "About us", "About <ORGANIZATION>", "About Acme Corp" (about the role/you are above).
      'about (?!(?:the )?(?:role|job|position|you)$)[^\\d\\s]\\S*(?: \\S+){0,2}',
      '(?:the |our )?company(?: (?:description|profile|overview|info(?:rmation)?))?',
      'who we are',
      'what (?:do )?we do',
      '(?:our|the) (?:story|mission|vision|culture|values|team|organi[sz]ation|history)',
      'your team',
      'working at \\S+(?: \\S+){0,3}',
      'life at \\S+(?: \\S+){0,3}',
    ],
  ],
  [
    'neutral',
    [
      '(?:job|position|vacancy|brief|short) description|description',
      'overview|summary',
      '(?:additional|further|more|other) (?:information|info|details)',
      'application(?: (?:procedure|process|deadline|and contact))?',
      'how to apply|apply(?: now)?|to apply',
      '(?:are you )?interested',
      'ready to apply',
      'contact(?: (?:details|person|information|us))?',
      '(?:the )?(?:interview|evaluation|recruitment|selection|hiring|application) process',
      'faq',
      '(?:place|location) of (?:work|employment)',
      'location(?: options)?',
      '(?:job|employment|contract) type',
      'experience level|seniority(?: level)?',
      'role|industry|department|schedule|deadline',
      'company (?:size|type)',
      'date posted|posted',
      'start(?:ing)? date',
      'requisition (?:number|id)',
      'job title|title|reports to',
      'equal opportunit(?:y|ies)(?: employer)?',
      'note to agencies',
    ],
  ],
];

const HEADINGS: readonly (readonly [HeadingKind, RegExp])[] = HEADING_ALTERNATIVES.map(
  ([kind, alts]) => [kind, new RegExp(`^(?:${alts.join('|')})$`, 'i')] as const,
);

const MAX_HEADING_WORDS = 8;

// ---------------------------------------------------------------------------------------------
// Cue phrases, searched anywhere in a sentence (word-bounded, case-insensitive). One regex per
// kind; the earliest match over all kinds wins, then the longer one, so "you will have" (a
// requirement) beats "you will" (a task).

const CUE_ALTERNATIVES: readonly (readonly [Exclude<SectionKind, 'other'>, readonly string[]])[] = [
  [
    'company',
    [
      // "we are" describes the employer, except when it is hiring or offering.
      `we(?:${APOS}re| are)\\b(?!\\s+(?:looking|seeking|searching|hiring|offering|happy to offer|able to offer))`,
      'our (?:company|mission|vision|values|culture|story|customers|clients|products?|platform|founders?|headquarters|history)',
      'founded',
      'headquartered',
      'we (?:build|believe|help|develop|create)',
    ],
  ],
  [
    'responsibilities',
    [
      `you(?:${APOS}ll| will)`,
      'responsible for',
      'your (?:tasks|responsibilities|role|duties|mission|day-to-day)',
      '(?:in|this) (?:role|position)',
      'responsibilities (?:include|will)',
      'duties',
      'the (?:successful )?(?:candidate|applicant) will',
    ],
  ],
  [
    'qualifications',
    [
      'experience (?:with|in|of|using|building|developing|working)',
      `years?${APOS}? (?:of )?experience`,
      'years of',
      'degree',
      `bachelor${APOS}?s?|master${APOS}s`,
      'knowledge (?:of|in)',
      'proficien\\w*',
      'familiar\\w*',
      'must[- ]have',
      'required',
      `you(?:${APOS}ve| have)`,
      `you(?:${APOS}ll| will) (?:have|need|bring)`,
      'expertise (?:in|with)',
      'understanding of',
      'ability to',
      'fluen(?:t|cy)',
      'nice to have',
      'a plus',
      'desirable',
      'preferred',
      'ideal candidate',
      'certifi(?:ed|cation)',
      '(?:candidates?|applicants?) (?:must|should)',
      'is essential',
      'qualifications?',
    ],
  ],
  [
    'benefits',
    [
      'we offer',
      `we(?:${APOS}re| are) (?:offering|happy to offer|able to offer)`,
      'salar(?:y|ies)',
      'pension',
      'holidays?',
      'vacation',
      'health insurance',
      'bonus(?:es)?',
      'flexible (?:hours|working|work|schedules?)',
      'paid (?:time off|leave)',
      'pto',
      'annual leave',
      'parental leave',
      'stock options',
      'benefits',
      'perks',
      '401\\s?\\(?k\\)?',
      'gym',
      'relocation',
      'work-life balance',
    ],
  ],
];

const CUES: readonly (readonly [Exclude<SectionKind, 'other'>, RegExp])[] = CUE_ALTERNATIVES.map(
  ([kind, alts]) => [kind, new RegExp(`\\b(?:${alts.join('|')})\\b`, 'i')] as const,
);

const KIND_ORDER: Readonly<Record<SectionKind, number>> = Object.freeze(
  Object.fromEntries(SECTION_KINDS.map((k, i) => [k, i])) as Record<SectionKind, number>,
);

/**
 * The kind of the earliest cue phrase in `sentence` (ties: the longer match, then
 * `SECTION_KINDS` order), or null when it has none. This is what classifies sentences outside
 * typed headings.
 *
 * @example
 * cueKind('You will design APIs.');                 // 'responsibilities'
 * cueKind('You will have 5 years of experience.');  // 'qualifications'
 * cueKind('Java and SQL');                          // null
 */
export function cueKind(sentence: string): SectionKind | null {
  let best: { kind: SectionKind; index: number; length: number } | null = null;
  for (const [kind, re] of CUES) {
    const m = re.exec(sentence);
    if (m === null) continue;
    const cand = { kind, index: m.index, length: m[0].length };
    if (
      best === null ||
      cand.index < best.index ||
      (cand.index === best.index && cand.length > best.length) ||
      (cand.index === best.index && cand.length === best.length && KIND_ORDER[kind] < KIND_ORDER[best.kind])
    ) {
      best = cand;
    }
  }
  return best?.kind ?? null;
}

// ---------------------------------------------------------------------------------------------
// Offsets and trimming. Zero-width characters count as whitespace: scraped postings use them as
// spacers (SkillSpan has lines holding only U+200D).

const SPACE = /[\s\u200b-\u200d\u2060\ufeff]/;

function isSpace(ch: string | undefined): boolean {
  return ch !== undefined && SPACE.test(ch);
}

interface Span {
  start: number;
  end: number;
}

/** [start, end) without leading and trailing whitespace; empty spans come back with start === end. */
function trimSpan(text: string, start: number, end: number): Span {
  let s = start;
  let e = end;
  while (s < e && isSpace(text[s])) s++;
  while (e > s && isSpace(text[e - 1])) e--;
  return { start: s, end: e };
}

/** Line spans, without their terminators (`\r\n`, `\n` or `\r`). */
function lineSpans(text: string): Span[] {
  const lines: Span[] = [];
  const re = /\r\n|\n|\r/g;
  let start = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    lines.push({ start, end: m.index });
    start = m.index + m[0].length;
  }
  lines.push({ start, end: text.length });
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Headings.

interface HeadingMatch {
  kind: HeadingKind;
  label: string;
  /** Where the heading part of the line ends (after its colon for "Label: content"). */
  end: number;
  /** The content after "Label:", when there is any. */
  content: Span | null;
}

/** The heading label of a line fragment: markdown marks and trailing punctuation removed. */
function headingLabel(fragment: string): string {
  let s = fragment.trim().replace(/^#{1,6}\s*/, '');
  const bold = /^(\*\*|__)(.*)\1$/.exec(s);
  if (bold !== null) s = bold[2] ?? '';
  return s.replace(/[\s:;.!?…]+$/, '').trim();
}

function headingKind(label: string): HeadingKind | null {
  if (label === '' || label.split(/\s+/).length > MAX_HEADING_WORDS) return null;
  const norm = label.replace(/\s+/g, ' ');
  for (const [kind, re] of HEADINGS) if (re.test(norm)) return kind;
  return null;
}

/** The heading a trimmed line [start, end) is or begins with ("Label: content"), or null. */
function matchHeading(text: string, line: Span): HeadingMatch | null {
  const raw = text.slice(line.start, line.end);
  const whole = headingLabel(raw);
  const kind = headingKind(whole);
  if (kind !== null) return { kind, label: whole, end: line.end, content: null };
  const colon = raw.indexOf(':');
  if (colon <= 0) return null;
  const label = headingLabel(raw.slice(0, colon));
  const inlineKind = headingKind(label);
  if (inlineKind === null) return null;
  const content = trimSpan(text, line.start + colon + 1, line.end);
  return { kind: inlineKind, label, end: line.start + colon + 1, content: content.start < content.end ? content : null };
}

// ---------------------------------------------------------------------------------------------
// Sentences.

// Bullets that never occur inside running text, so they split a line wherever they stand.
const GLYPH_BULLET = /[•☞⌲▪‣◦●○■□►▸▶➢➤✓✔❖◆◇]/g;
// List markers recognised only at the start of a line (or of a glyph-bullet piece): they are
// ordinary characters mid-line ("full-time", "C++ * 2").
const LEADING_MARKER = /^(?:[-*+–—·→]|\d{1,2}[.)])(?=[\s\u200b-\u200d\u2060\ufeff]|$)/;
// Sentence ends: a run of . ! ? (with closing quotes or brackets) or a ;, followed by whitespace.
const SENTENCE_END = /[.!?]+["'”’)\]]*(?=\s)|;(?=\s)/g;
// Abbreviations after which ". " does not end a sentence ("e.g ." is how tokenised text such as
// SkillSpan spells "e.g.").
const ABBREVIATION = /(?:^|[\s(])(?:(?:e\.g|i\.e)\s?|approx|incl|vs|cf|ca|dr|prof|mr|mrs|ms|nr|dept|esp)\.$/i;

/** Sentence spans of text[start, end): bullets split and stripped, each span trimmed, empty ones dropped. */
function sentenceSpans(text: string, start: number, end: number): Span[] {
  const pieces: Span[] = [];
  let pieceStart = start;
  const bullets = new RegExp(GLYPH_BULLET.source, 'g');
  const segment = text.slice(start, end);
  for (let m = bullets.exec(segment); m !== null; m = bullets.exec(segment)) {
    pieces.push({ start: pieceStart, end: start + m.index });
    pieceStart = start + m.index + m[0].length;
  }
  pieces.push({ start: pieceStart, end });

  const out: Span[] = [];
  for (const piece of pieces) {
    let p = trimSpan(text, piece.start, piece.end);
    // Drop list markers ("- ", "* ", "1. "), possibly stacked ("- * item").
    for (;;) {
      const marker = LEADING_MARKER.exec(text.slice(p.start, p.end));
      if (marker === null) break;
      p = trimSpan(text, p.start + marker[0].length, p.end);
    }
    const body = text.slice(p.start, p.end);
    let from = 0;
    const ends = new RegExp(SENTENCE_END.source, 'g');
    for (let m = ends.exec(body); m !== null; m = ends.exec(body)) {
      const cut = m.index + m[0].length;
      if (m[0].startsWith('.') && ABBREVIATION.test(body.slice(0, m.index + 1))) continue;
      out.push(trimSpan(text, p.start + from, p.start + cut));
      from = cut;
    }
    out.push(trimSpan(text, p.start + from, p.end));
  }
  return out.filter((s) => s.start < s.end);
}

// ---------------------------------------------------------------------------------------------

/**
 * Splits a job posting into sections and sentences (rules in the file header).
 *
 * @example
 * const text = 'Acme builds robots.\n\nWhat you will do\n• Write Rust\n\nRequirements: 3 years of C++';
 * const { sections, sentences } = segmentPosting(text);
 * sections.map((s) => [s.kind, s.heading, s.decidedBy]);
 * // [['other', null, 'default'], ['responsibilities', 'What you will do', 'heading'],
 * //  ['qualifications', 'Requirements', 'heading']]
 * sentences.map((s) => `${s.section}:${s.text}`);
 * // ['0:Acme builds robots.', '1:Write Rust', '2:3 years of C++']
 */
export function segmentPosting(text: string): SegmentedPosting {
  const sections: PostingSection[] = [];
  const sentences: PostingSentence[] = [];
  // Whether the current section is classified by cues (before the first heading, or under a
  // neutral heading) or fixed by its heading.
  let byCue = true;

  const addSentence = (span: Span): void => {
    const sentence = text.slice(span.start, span.end);
    let current = sections.at(-1);
    if (current === undefined) {
      const cue = cueKind(sentence);
      current = { kind: cue ?? 'other', heading: null, start: span.start, end: span.end, decidedBy: cue === null ? 'default' : 'cue' };
      sections.push(current);
    } else if (byCue) {
      const cue = cueKind(sentence);
      if (cue !== null && current.decidedBy === 'default') {
        // The first cue-bearing sentence of a run decides the run, including the sentences before it.
        current.kind = cue;
        current.decidedBy = 'cue';
      } else if (cue !== null && cue !== current.kind) {
        current = { kind: cue, heading: null, start: span.start, end: span.end, decidedBy: 'cue' };
        sections.push(current);
      }
    }
    current.end = span.end;
    sentences.push({ text: sentence, start: span.start, end: span.end, section: sections.length - 1 });
  };

  for (const raw of lineSpans(text)) {
    const line = trimSpan(text, raw.start, raw.end);
    if (line.start === line.end) continue;
    const heading = matchHeading(text, line);
    if (heading === null) {
      for (const span of sentenceSpans(text, line.start, line.end)) addSentence(span);
      continue;
    }
    const typed = heading.kind !== 'neutral';
    sections.push({
      kind: heading.kind === 'neutral' ? 'other' : heading.kind,
      heading: heading.label,
      start: line.start,
      end: heading.end,
      decidedBy: typed ? 'heading' : 'default',
    });
    byCue = !typed;
    if (heading.content !== null) {
      for (const span of sentenceSpans(text, heading.content.start, heading.content.end)) addSentence(span);
    }
  }
  return { sections, sentences };
}
