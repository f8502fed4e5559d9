/**
 * A small valid config that the config tests start from: test/config.test.ts edits its text
 * (its messages name lines of it), test/config-schema.test.ts checks it against the JSON Schema.
 */
export const BASE_CONFIG = `name: unit-test
data:
  train:
    - recipe: esco-occupations
      options: {include_description: true}
    - recipe: esco-skills
  eval:
    - name: jobbert
      recipe: jobbert-titles
      metrics: [mrr, recall@5]
model:
  preset: bert-tiny
loss:
  - name: infonce
    temperature: 0.05
train:
  steps: 100
  lr: 0.001
`;
