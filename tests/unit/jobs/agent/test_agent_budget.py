from __future__ import annotations

from datetime import date

from cogmora.testing import InMemoryCallBudget

DAY = date(2024, 5, 1)


async def test_calls_are_allowed_up_to_the_daily_limit() -> None:
    """Three calls pass a budget of three; the fourth is refused and spends nothing."""
    budget = InMemoryCallBudget(3)
    assert [await budget.try_spend("u1", DAY) for _ in range(4)] == [True, True, True, False]
    assert budget.spent("u1", DAY) == 3


async def test_budgets_are_per_user_and_per_day() -> None:
    """Another user, or the next day, starts from a full budget."""
    budget = InMemoryCallBudget(1)
    assert await budget.try_spend("u1", DAY)
    assert await budget.try_spend("u2", DAY)
    assert await budget.try_spend("u1", date(2024, 5, 2))
    assert not await budget.try_spend("u1", date(2024, 5, 2))


async def test_a_zero_budget_refuses_every_call() -> None:
    """A budget of 0 turns the LLM provider off."""
    assert not await InMemoryCallBudget(0).try_spend("u1", DAY)
