/* The migration engine (being written; see the migrations issue). */
#pragma once
