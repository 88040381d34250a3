from rest_framework.pagination import PageNumberPagination as _Base


class PageNumberPagination(_Base):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(self, queryset, request, view=None):
        """The first page without COUNT(*) when the whole list fits on it, and read once when it does not.

        Most lists asked for are short (one doctor's slots for a day, a patient's appointments): reading
        one row more than a page tells whether there is a second page, and when there is not, the count
        is the number of rows read. A longer list's first page is those rows less the one more, with a
        COUNT(*) for the total (a department's open slots: reading the page again cost as much as the
        count). Later pages page as DRF does (COUNT, then the page).
        """
        page_size = self.get_page_size(request)
        if page_size and request.query_params.get(self.page_query_param, "1") == "1":
            rows = list(queryset[: page_size + 1])
            self.request = request
            if len(rows) <= page_size:
                self.page = self.django_paginator_class(rows, page_size).page(1)
                return rows
            paginator = self.django_paginator_class(queryset, page_size)
            self.page = paginator._get_page(rows[:page_size], 1, paginator)
            if paginator.num_pages > 1 and self.template is not None:
                self.display_page_controls = True  # the browsable API's page links
            return rows[:page_size]
        return super().paginate_queryset(queryset, request, view)
