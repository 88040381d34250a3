from rest_framework.pagination import PageNumberPagination as _Base


class PageNumberPagination(_Base):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(self, queryset, request, view=None):
        """The first page without COUNT(*) when the whole list fits on it.

        Most lists asked for are short (one doctor's slots for a day, a patient's appointments): reading
        one row more than a page tells whether there is a second page, and when there is not, the count
        is the number of rows read. Longer lists, and later pages, page as DRF does (COUNT, then the page).
        """
        page_size = self.get_page_size(request)
        if page_size and request.query_params.get(self.page_query_param, "1") == "1":
            rows = list(queryset[: page_size + 1])
            if len(rows) <= page_size:
                self.request = request
                self.page = self.django_paginator_class(rows, page_size).page(1)
                return rows
        return super().paginate_queryset(queryset, request, view)
