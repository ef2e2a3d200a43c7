from redbeat.schedulers import RedBeatScheduler as RedBeatScheduler
