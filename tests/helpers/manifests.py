"""The manifests the end-to-end tests serve, as YAML templates with `{placeholders}`.

`STANDARD` wires one authenticated OpenAI/Azure mock (`{port}`), one keyless self-hosted mock
(`{vllm_port}`) and a closed port (`{closed_port}`) into these models:

| model                       | upstream model id         | types                              | access            |
|-----------------------------|---------------------------|------------------------------------|-------------------|
| openai-main/gpt-4o          | gpt-4o                    | chat                               | team:everyone     |
| openai-main/gpt-4o-priced   | gpt-4o-mini (cost set)    | chat                               | team:everyone     |
| openai-main/instruct        | gpt-3.5-turbo-instruct    | completion                         | team:everyone     |
| openai-main/embed           | text-embedding-3-small    | embedding                          | team:everyone     |
| openai-main/image           | gpt-image-1               | image                              | team:everyone     |
| openai-main/whisper         | whisper-1                 | audio_transcription/translation    | team:everyone     |
| openai-main/tts             | tts-1                     | text_to_speech                     | team:everyone     |
| openai-main/moderation      | omni-moderation-latest    | moderation                         | team:everyone     |
| azure-main/gpt4o-deploy     | deployment my-deployment  | chat, embedding                    | everyone (open)   |
| vllm-local/llama            | meta-llama/Llama-3.1-8B   | chat, completion                   | everyone (open)   |
| vllm-local/reranker         | BAAI/bge-reranker-v2-m3   | rerank                             | everyone (open)   |
| mock/echo                   | (built in)                | chat, completion, embedding        | everyone (open)   |
| restricted/gpt-4o           | gpt-4o                    | chat                               | user:bob only     |
| team-only/gpt-4o            | gpt-4o                    | chat                               | team:ml-team only |
| unreachable/gpt-4o          | gpt-4o at a closed port   | chat                               | everyone (open)   |

Identities: team `ml-team` = alice; virtual account `ci-bot` may call only `openai-main/gpt-4o`,
virtual account `wild-bot` every `vllm-local/*` model.
"""

from __future__ import annotations

OPENAI_KEY = "sk-upstream-secret-123"
AZURE_KEY = "azure-secret-456"
AZURE_API_VERSION = "2024-10-21"
ALICE = "alice@example.com"
BOB = "bob@example.com"
COST_INPUT_PER_MILLION = 1000.0
COST_OUTPUT_PER_MILLION = 2000.0

OPENAI_ACCOUNT = """\
type: provider-account/openai
name: openai-main
base_url: http://127.0.0.1:{port}/v1
auth_data: {type: api-key, api_key: sk-upstream-secret-123}
collaborators: [{subject: "team:everyone", role_id: provider-account-access}]
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
  - name: gpt-4o-priced
    type: integration/model/openai
    model_id: gpt-4o-mini
    model_types: [chat]
    cost: {input_per_million_tokens: 1000, output_per_million_tokens: 2000}
  - {name: instruct, type: integration/model/openai, model_id: gpt-3.5-turbo-instruct, model_types: [completion]}
  - {name: embed, type: integration/model/openai, model_id: text-embedding-3-small, model_types: [embedding]}
  - {name: image, type: integration/model/openai, model_id: gpt-image-1, model_types: [image]}
  - name: whisper
    type: integration/model/openai
    model_id: whisper-1
    model_types: [audio_transcription, audio_translation]
  - {name: tts, type: integration/model/openai, model_id: tts-1, model_types: [text_to_speech]}
  - {name: moderation, type: integration/model/openai, model_id: omni-moderation-latest, model_types: [moderation]}
"""

AZURE_ACCOUNT = """\
type: provider-account/azure-openai
name: azure-main
base_url: http://127.0.0.1:{port}
api_version: "2024-10-21"
auth_data: {type: api-key, api_key: azure-secret-456}
integrations:
  - {name: gpt4o-deploy, type: integration/model/azure-openai, model_id: my-deployment, model_types: [chat, embedding]}
"""

SELF_HOSTED_ACCOUNT = """\
type: provider-account/self-hosted-model
name: vllm-local
integrations:
  - name: llama
    type: integration/model/self-hosted-model
    hosted_model_name: meta-llama/Llama-3.1-8B
    url: "http://127.0.0.1:{vllm_port}/v1"
    model_server: openai-compatible
    model_types: [chat, completion]
  - name: reranker
    type: integration/model/self-hosted-model
    hosted_model_name: BAAI/bge-reranker-v2-m3
    url: "http://127.0.0.1:{vllm_port}/v1"
    model_server: openai-compatible
    model_types: [rerank]
"""

MOCK_ACCOUNT = """\
type: provider-account/mock
name: mock
integrations:
  - {name: echo, type: integration/model/mock, model_id: echo-1, model_types: [chat, completion, embedding]}
"""

RESTRICTED_ACCOUNTS = """\
type: provider-account/openai
name: restricted
base_url: http://127.0.0.1:{port}/v1
auth_data: {type: api-key, api_key: sk-upstream-secret-123}
collaborators: [{subject: "user:bob@example.com", role_id: provider-account-access}]
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
---
type: provider-account/openai
name: team-only
base_url: http://127.0.0.1:{port}/v1
auth_data: {type: api-key, api_key: sk-upstream-secret-123}
collaborators: [{subject: "team:ml-team", role_id: provider-account-access}]
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
"""

UNREACHABLE_ACCOUNT = """\
type: provider-account/openai
name: unreachable
base_url: http://127.0.0.1:{closed_port}/v1
auth_data: {type: api-key, api_key: sk-upstream-secret-123}
integrations:
  - {name: gpt-4o, type: integration/model/openai, model_id: gpt-4o, model_types: [chat]}
"""

IDENTITIES = """\
type: team
name: ml-team
members: [alice@example.com]
---
type: virtual-account
name: ci-bot
allowed_models: [openai-main/gpt-4o]
---
type: virtual-account
name: wild-bot
allowed_models: [vllm-local/*]
"""

STANDARD = "---\n".join(
    [
        OPENAI_ACCOUNT,
        AZURE_ACCOUNT,
        SELF_HOSTED_ACCOUNT,
        MOCK_ACCOUNT,
        RESTRICTED_ACCOUNTS,
        UNREACHABLE_ACCOUNT,
        IDENTITIES,
    ]
)

# Only the built-in mock provider: a gateway that needs no upstream at all.
MOCK_ONLY = MOCK_ACCOUNT

# The admin API's roles over the mock model: alice admin, team sre (sam) viewers, team ml (carol,
# dave) and everyone else plain users, virtual account `bot` (always refused by the admin API).
ADMIN_ROLES = (
    MOCK_ONLY
    + """---
type: team
name: sre
members: [sam@example.com]
---
type: team
name: ml
members: [carol@example.com, dave@example.com]
---
type: virtual-account
name: bot
allowed_models: [mock/*]
---
type: gateway-admin-config
admins: [user:alice@example.com]
viewers: [team:sre]
"""
)
