"""One definition per filter: a django-filter `FilterSet` in the app's selectors decides which
rows a filter keeps, and the admin's list filter, the dashboard's figure and its link all use it.

    class OrderFilter(FilterSet):
        sale = ChoiceFilter(choices=[("yes", "Sales")], method="filter_sale")
        ...

    class SaleFilter(filterset_list_filter(OrderFilter, "sale", title="sale")):
        pass
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet


def filtered(filterset_class, queryset: QuerySet | None = None, **params) -> QuerySet:
    """`queryset` (the FilterSet's model's rows by default) kept by `params`, as the admin's list
    filters and the dashboard's links would keep them. An invalid value raises ValueError."""
    filterset = filterset_class({k: v for k, v in params.items() if v not in (None, "")}, queryset=queryset)
    if not filterset.is_valid():
        raise ValueError(filterset.errors.as_text())
    return filterset.qs


def filterset_list_filter(filterset_class, name: str, *, title: str):
    """An admin list filter (a SimpleListFilter) for the field `name` of `filterset_class`: its
    choices are the field's choices, its rows the FilterSet's."""
    field = filterset_class.base_filters[name]

    class _FilterSetListFilter(admin.SimpleListFilter):
        parameter_name = name

        def lookups(self, request, model_admin):
            return list(field.extra.get("choices") or [])

        def queryset(self, request, queryset):
            value = self.value()
            if not value:
                return queryset
            filterset = filterset_class({name: value}, queryset=queryset)
            # An unknown value shows every row, like Django's own list filters for a bad lookup.
            return filterset.qs if filterset.is_valid() else queryset

    _FilterSetListFilter.title = title
    _FilterSetListFilter.__name__ = f"{filterset_class.__name__}_{name}"
    return _FilterSetListFilter
