"""Synthetic seed units with every optional part present, for tests, examples and benchmarks.

Deterministic for a given ``seed``. Timestamps are spelled in every supported style (``Z``,
``+00:00``, no offset, a fraction, another offset) and number fields hold both integers and floats,
so a round trip exercises all of the spelling the storage keeps.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

USERS: tuple[dict[str, Any], ...] = (
    {"id": 1, "key": "brian", "email": "brian@example.com", "name": "Brian Example", "role": "admin",
     "is_active": True, "created_at": "2024-01-01T09:00:00Z", "updated_at": "2024-01-01T09:00:00Z"},
    {"id": 2, "key": "ada", "email": "ada@example.com", "name": "Ada Example", "role": "learner",
     "is_active": True, "created_at": "2024-01-02T09:00:00+00:00", "updated_at": "2024-01-02T09:00:00"},
)
_STYLES = ("Z", "+00:00", "", ".250Z", "+02:00")
_LEVELS = ("Recall", "Comprehension", "Application", "Transfer")
_DIFFICULTY = ("easy", "medium", "hard")


def synthetic_users() -> dict[str, Any]:
    return {"users": [dict(u) for u in USERS]}


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _time(day: int, minute: int, style: str) -> str:
    hour, minute = divmod(minute, 60)
    if style == "+02:00":
        return f"2024-02-{day:02d}T{(hour + 2) % 24:02d}:{minute:02d}:00+02:00"
    if style.startswith("."):
        return f"2024-02-{day:02d}T{hour:02d}:{minute:02d}:00{style}"
    return f"2024-02-{day:02d}T{hour:02d}:{minute:02d}:00{style}"


def synthetic_unit(
    seed: int = 0, lessons: int = 5, exercises: int = 20, history: bool = True, steps: int = 3,
) -> dict[str, Any]:
    """One unit document with ``lessons`` lessons of ``exercises`` exercises each.

    With ``history``, each lesson has a flow run, ``steps`` step runs and as many LLM requests,
    and the unit has resources and coach and assistant conversations.
    """
    rng = random.Random(seed)
    unit_id = _uuid(rng)
    day = 1 + seed % 28
    objectives = [
        {"id": f"lo_{n}", "title": f"Objective {n} of unit {seed}", "description": f"Learners can do thing {n}."}
        for n in range(1, 4)
    ]
    unit: dict[str, Any] = {
        "id": unit_id,
        "title": f"Synthetic unit {seed}: attention & transformers",
        "description": "A generated unit for tests and benchmarks — with non-ASCII text: café, 学习.",
        "learner_level": "beginner",
        "learning_objectives": objectives,
        "target_lesson_count": lessons,
        "source_material": "Source material paragraph. " * 20,
        "generated_from_topic": True,
        "flow_type": "standard",
        "status": "completed",
        "is_global": False,
        "owner_key": "brian",
        "art_image_description": "An abstract network of glowing nodes.",
        "art_image": {"object_id": _uuid(rng), "width": 1024, "height": 1024, "format": "png"},
        "podcast_transcript": "Welcome to the unit podcast. " * 10,
        "podcast_voice": "alloy",
        "lessons": [],
        "resources": [],
        "learning_conversations": {"coach": [], "assistant": []},
    }
    request_ids: list[str] = []
    for n in range(lessons):
        lesson_id = _uuid(rng)
        flow_run_id = _uuid(rng)
        style = _STYLES[n % len(_STYLES)]
        bank = []
        for k in range(exercises):
            options = [
                {"id": f"opt_{k}_{letter}", "label": letter.upper(), "text": f"Option {letter} of exercise {k}",
                 "rationale_wrong": None if letter == "a" else f"Not {letter}: it confuses two ideas."}
                for letter in "abcd"
            ]
            bank.append({
                "id": f"ex_{k + 1}",
                "exercise_type": "mcq",
                "exercise_category": "comprehension",
                "stem": f"Question {k + 1} of lesson {n + 1}: which statement about attention is true?",
                "cognitive_level": _LEVELS[k % 4],
                "difficulty": _DIFFICULTY[k % 3],
                "aligned_learning_objective": objectives[k % 3]["id"],
                "options": options,
                "answer_key": {"label": "A", "option_id": f"opt_{k}_a", "rationale_right": "A is right because..."},
            })
        quiz = [e["id"] for e in bank[: max(1, exercises // 2)]]
        lesson: dict[str, Any] = {
            "id": lesson_id,
            "title": f"Lesson {n + 1}: part {n + 1} of the story",
            "learner_level": "beginner",
            "lesson_type": "standard",
            "source_material": "Lesson source material. " * 10,
            "podcast_transcript": "Lesson podcast transcript. " * 10,
            "podcast_voice": "alloy",
            "podcast_duration_seconds": 600 + n,
            "podcast_generated_at": _time(day, 30 + n, ""),
            "podcast_audio_object_id": _uuid(rng),
            "package": {
                "meta": {"lesson_id": lesson_id, "title": f"Lesson {n + 1}: part {n + 1} of the story",
                         "learner_level": "beginner", "package_schema_version": 2, "content_version": 1},
                "unit_learning_objective_ids": [o["id"] for o in objectives],
                "exercise_bank": bank,
                "quiz": quiz,
                "quiz_metadata": {
                    "quiz_type": "formative_seed",
                    "total_items": len(quiz),
                    "difficulty_distribution_target": {"easy": 0.5, "medium": 0.5, "hard": 0.0},
                    "difficulty_distribution_actual": {"easy": 0.5, "medium": 0.25, "hard": 0.25},
                    "cognitive_mix_target": {l: 0.25 for l in _LEVELS},
                    "cognitive_mix_actual": {"Recall": 0.5, "Comprehension": 0.5, "Application": 0, "Transfer": 0},
                    "coverage_by_LO": {o["id"]: {"exercise_ids": [e["id"] for e in bank if e["aligned_learning_objective"] == o["id"]]} for o in objectives},
                    "coverage_by_concept": {},
                    "normalizations_applied": [],
                    "selection_rationale": ["balanced difficulty"],
                    "gaps_identified": [],
                },
            },
            "package_version": 1,
            "flow_run_id": flow_run_id if history else None,
            "created_at": _time(day, n, style),
            "updated_at": _time(day, n + 1, style),
            "flow_run": None,
            "step_runs": [],
            "llm_requests": [],
        }
        if history:
            lesson["flow_run"] = {
                "id": flow_run_id, "user_id": 1, "flow_name": "lesson_creation", "status": "completed",
                "execution_mode": "sync", "current_step": None, "step_progress": steps, "total_steps": steps,
                "progress_percentage": 100.0,
                "created_at": _time(day, n, "Z"), "updated_at": _time(day, n + 30, "Z"),
                "started_at": _time(day, n, "Z"), "completed_at": _time(day, n + 30, "Z"),
                "last_heartbeat": _time(day, n + 30, ".250Z"),
                "total_tokens": 8420, "total_cost": 0.0415, "execution_time_ms": 30000,
                "inputs": {"topic": "attention", "lesson_index": n},
                "outputs": {"lesson_id": lesson_id},
                "flow_metadata": {"version": "1.2.0", "tags": ["seed", "synthetic"]},
                "error_message": None,
            }
            for s in range(steps):
                request_id = _uuid(rng)
                request_ids.append(request_id)
                lesson["llm_requests"].append({
                    "id": request_id, "user_id": 1, "api_variant": "responses", "provider": "openai",
                    "model": "gpt-4", "provider_response_id": f"chatcmpl-{seed}-{n}-{s}",
                    "system_fingerprint": "fp_abc123", "temperature": 0.7, "max_output_tokens": 2000,
                    "messages": [{"role": "system", "content": "You write lessons."},
                                 {"role": "user", "content": f"Write step {s} of lesson {n}."}],
                    "additional_params": {},
                    "request_payload": {"model": "gpt-4", "temperature": 0.7, "max_tokens": 2000},
                    "response_content": '{"text": "Generated content."}',
                    "response_raw": {"id": f"chatcmpl-{seed}-{n}-{s}", "usage": {"total_tokens": 3200}},
                    "tokens_used": 3200, "input_tokens": None, "output_tokens": None,
                    "cost_estimate": 1e-05 if s == 0 else 0.016, "status": "completed",
                    "execution_time_ms": 5200, "error_message": None, "error_type": None,
                    "retry_attempt": 1, "cached": False,
                    "response_created_at": _time(day, n + s + 5, "Z"),
                    "created_at": _time(day, n + s, "Z"), "updated_at": _time(day, n + s + 5, "+00:00"),
                })
                lesson["step_runs"].append({
                    "id": _uuid(rng), "flow_run_id": flow_run_id, "llm_request_id": request_id,
                    "step_name": f"generate_step_{s}", "step_order": s + 1, "status": "completed",
                    "inputs": {"step": s}, "outputs": {"ok": True}, "tokens_used": 3200,
                    "cost_estimate": 0.016, "execution_time_ms": 5200, "error_message": None,
                    "step_metadata": {"prompt_file": f"prompts/step_{s}.md"},
                    "created_at": _time(day, n + s, "Z"), "updated_at": _time(day, n + s + 5, "Z"),
                    "completed_at": _time(day, n + s + 5, "Z"),
                })
        unit["lessons"].append(lesson)
    if history:
        unit["resources"].append({
            "id": _uuid(rng), "user_id": 1, "resource_type": "article", "filename": "document.pdf",
            "source_url": "https://example.com/document.pdf", "extracted_text": "Extracted text. " * 20,
            "extraction_metadata": {"pages": 12, "ocr": False}, "file_size": 1024000,
            "object_store_document_id": _uuid(rng), "object_store_image_id": _uuid(rng),
            "created_at": _time(day, 0, "Z"), "updated_at": _time(day, 0, "Z"),
            "document": {"mime_type": "application/pdf"}, "image": {"mime_type": "image/png"},
        })
        for group, kind in (("coach", "learning_coach"), ("assistant", "teaching_assistant")):
            conversation_id = _uuid(rng)
            messages = [
                {"conversation_id": conversation_id, "role": role, "content": f"{role} message {m}",
                 "message_order": m + 1, "llm_request_id": request_ids[0] if role == "assistant" and request_ids else None,
                 "tokens_used": 10, "cost_estimate": 0.0001, "message_metadata": {"client": "web"},
                 "created_at": _time(day, 40 + m, "Z"), "updated_at": _time(day, 40 + m, "Z")}
                for m, role in enumerate(("user", "assistant", "user"))
            ]
            unit["learning_conversations"][group].append({
                "id": conversation_id, "user_id": 2, "conversation_type": kind, "title": f"{kind} chat",
                "status": "active", "conversation_metadata": {"lesson_index": 0}, "message_count": len(messages),
                "created_at": _time(day, 40, "Z"), "updated_at": _time(day, 42, "Z"),
                "last_message_at": _time(day, 42, "Z"), "messages": messages,
            })
    return unit
