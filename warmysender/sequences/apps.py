from django.apps import AppConfig


class SequencesConfig(AppConfig):
    name = "warmysender.sequences"
    label = "sequences"
    verbose_name = "Campaigns and sequences"
